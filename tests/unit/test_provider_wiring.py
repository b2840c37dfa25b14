"""Wiring the live providers: settings read from the environment and checked with errors
that name the variable (never its value; keys are not settings at all, the adapter reads
them at first use), and prices as validated data. That each backend loads only its own SDK
is checked in a fresh interpreter: tests/integration/test_provider_sdk_imports.py."""

from __future__ import annotations

import importlib
import time

import pytest
from pydantic import ValidationError

from aiprod import adapter_tables
from aiprod.adapters.provider_base import LiveBackend
from aiprod.config import ProviderSettings, Settings, secret
from aiprod.domain.catalog import ModelSpec, default_catalog
from aiprod.exceptions import ConfigError


def test_live_settings_from_the_environment():
    env = {
        "AIPROD_PROVIDER_MODE": "live",
        "AIPROD_OUTPUT_BUCKET": "gs://acme-videos/",
        "AIPROD_CONTENT_POLICY": "Fallback",
        "AIPROD_VEO_LOCATION": "europe-west4",
        "RUNWAYML_API_SECRET": "key_do_not_keep",
    }
    settings = Settings.from_env(env)

    assert settings.provider_mode == "live"
    assert settings.providers.bucket() == "acme-videos"
    assert settings.providers.content_policy == "fallback"
    assert settings.providers.veo_location == "europe-west4"
    assert settings.providers.runway_base_url is None  # the SDK's own host
    assert "key_do_not_keep" not in repr(settings)


@pytest.mark.parametrize(
    ("name", "value"), [("AIPROD_CONTENT_POLICY", "lenient"), ("AIPROD_PROVIDER_MODE", "real")]
)
def test_a_bad_choice_names_the_variable(name, value):
    with pytest.raises(ConfigError, match=name) as caught:
        Settings.from_env({name: value})
    assert value not in str(caught.value)


def test_a_missing_bucket_or_key_is_named_at_first_use():
    with pytest.raises(ConfigError, match="AIPROD_OUTPUT_BUCKET"):
        ProviderSettings().bucket()
    with pytest.raises(ConfigError, match="REPLICATE_API_TOKEN"):
        secret("REPLICATE_API_TOKEN", {"REPLICATE_API_TOKEN": "  "})
    assert secret("REPLICATE_API_TOKEN", {"REPLICATE_API_TOKEN": "r8_x"}) == "r8_x"


def test_a_compute_priced_model_needs_a_hardware_rate():
    spec = default_catalog().model("replicate", "wan-video/wan-2.2-t2v-fast").model_dump()
    with pytest.raises(ValidationError, match="hardware_micros_per_s"):
        ModelSpec.model_validate({**spec, "cost_basis": "predict_time"})


def test_every_backend_has_a_live_adapter_of_the_family_named_like_it():
    # The table names its modules as strings (nothing imported until used); each resolves to a
    # LiveBackend whose name is the backend's, for every backend the catalog routes to.
    assert set(adapter_tables.LIVE_BACKENDS) == set(default_catalog().fallback_order)
    for name, target in adapter_tables.LIVE_BACKENDS.items():
        module, _, attribute = target.partition(":")
        adapter = getattr(importlib.import_module(module), attribute)
        assert issubclass(adapter, LiveBackend) and adapter.name == name


def test_unknown_modes_and_backends_are_refused():
    catalog = default_catalog()
    with pytest.raises(KeyError, match="kling"):
        adapter_tables.make_backend("kling", Settings(provider_mode="live"), catalog, None)
    with pytest.raises(NotImplementedError, match="recorded"):
        adapter_tables.make_backend("veo", Settings(provider_mode="recorded"), catalog, None)
    for mode in ("jsonl", "cloud:x", "prometheus"):
        with pytest.raises(ConfigError, match="AIPROD_METRICS"):
            adapter_tables.make_metric_sink(Settings(metrics=mode), time.time)
