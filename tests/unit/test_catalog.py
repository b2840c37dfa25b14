"""The backend catalog: the shipped one is valid, and a bad one fails at load time."""

from __future__ import annotations

import copy
import json
from importlib import resources

import pytest
from pydantic import ValidationError

from aiprod.domain.catalog import default_catalog, parse_catalog
from aiprod.topology import BACKENDS


@pytest.fixture
def shipped() -> dict:
    return json.loads(resources.files("aiprod").joinpath("data/catalog.json").read_text())


def test_default_catalog_loads_with_every_backend_in_the_fallback_order():
    # WHEN the shipped catalog is loaded
    catalog = default_catalog()

    # THEN it follows the product's ranking and covers every deployed backend
    assert catalog.fallback_order == ["runway", "veo", "replicate"]
    assert set(catalog.backends) == set(BACKENDS)
    assert [catalog.rank(b) for b in catalog.fallback_order] == [0, 1, 2]


def test_default_catalog_prices_by_resolution_and_duration():
    catalog = default_catalog()

    # GIVEN Runway gen4.5 at 12 credits/s = $0.12/s, and Veo fast at $0.12/s in 1080p
    # THEN the worst case is price per second times duration, in micro-USD
    assert catalog.model("runway", "gen4.5").price_for("720p", 5) == 600_000
    assert catalog.model("veo", "veo-3.1-fast-generate-001").price_for("1080p", 8) == 960_000
    # AND a resolution with no price has no cost (refused), never zero
    assert catalog.model("runway", "gen4.5").price_for("1080p", 5) is None


def test_the_shipped_text_parses_unchanged(shipped):
    # GIVEN the raw catalog THEN it round-trips through the validating parser
    assert parse_catalog(json.dumps(shipped)) == default_catalog()


def _unpriced_resolution(c):
    c["backends"]["runway"]["models"]["gen4.5"]["resolutions"].append("1080p")


def _unknown_top_key(c):
    c["discount"] = 0.5


def _unknown_model_key(c):
    c["backends"]["veo"]["models"]["veo-3.1-generate-001"]["free_tier"] = True


def _unknown_backend_key(c):
    c["backends"]["veo"]["region"] = "us-central1"


def _fallback_repeats(c):
    c["fallback_order"] = ["runway", "veo", "replicate", "runway"]


def _fallback_names_unknown(c):
    c["fallback_order"] = ["runway", "veo", "replicate", "sora"]


def _fallback_misses_one(c):
    c["fallback_order"] = ["runway", "veo"]


def _zero_price(c):
    c["backends"]["replicate"]["models"]["wan-video/wan-2.2-t2v-fast"]["price_micros_per_s"][
        "480p"
    ] = 0


def _float_price(c):
    c["backends"]["veo"]["models"]["veo-3.1-generate-001"]["price_micros_per_s"]["720p"] = "0.4"


def _quality_above_one(c):
    c["backends"]["runway"]["models"]["gen4.5"]["quality"] = 1.2


def _unknown_input_kind(c):
    c["backends"]["runway"]["models"]["gen4.5"]["inputs"].append("audio")


def _backend_without_models(c):
    c["backends"]["veo"]["models"] = {}


def _other_currency(c):
    c["currency"] = "USD"


BROKEN = [
    _unpriced_resolution,
    _unknown_top_key,
    _unknown_model_key,
    _unknown_backend_key,
    _fallback_repeats,
    _fallback_names_unknown,
    _fallback_misses_one,
    _zero_price,
    _float_price,
    _quality_above_one,
    _unknown_input_kind,
    _backend_without_models,
    _other_currency,
]


@pytest.mark.parametrize("breakage", BROKEN, ids=lambda f: f.__name__.strip("_"))
def test_parse_catalog_refuses_a_broken_catalog(shipped, breakage):
    # GIVEN the shipped catalog with one defect
    broken = copy.deepcopy(shipped)
    breakage(broken)

    # WHEN / THEN loading it fails rather than pricing a job wrongly
    with pytest.raises(ValidationError):
        parse_catalog(json.dumps(broken))


def test_unpriced_resolution_error_names_the_resolution(shipped):
    broken = copy.deepcopy(shipped)
    _unpriced_resolution(broken)

    with pytest.raises(ValidationError, match="resolutions without a price: \\['1080p'\\]"):
        parse_catalog(json.dumps(broken))
