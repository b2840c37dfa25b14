"""Which adapter serves which setting: module-level tables, each adapter named as
``"module:attribute"`` and imported on first use, so a process loads only what it builds (a
render function its own provider's SDK, an embedded run no Google SDK at all).

``make_backend`` picks by ``AIPROD_PROVIDER_MODE`` then backend name, ``make_metric_sink`` by
``AIPROD_METRICS``; ``bootstrap.App`` calls them once per process.
"""

from __future__ import annotations

import importlib
import os
import uuid
from collections.abc import Callable
from functools import cache
from pathlib import Path

from aiprod.config import Settings
from aiprod.domain.catalog import Catalog
from aiprod.exceptions import ConfigError
from aiprod.ports import MetricSink, NullSink, SpendSource, VideoBackend

# Adapters as "module:attribute", imported on first use: a process loads only what it builds
# (a render function its own provider's SDK, an embedded run no Google SDK at all).
LIVE_BACKENDS: dict[str, str] = {
    "runway": "aiprod.adapters.runway:RunwayBackend",
    "veo": "aiprod.adapters.veo:VeoBackend",
    "replicate": "aiprod.adapters.replicate:ReplicateBackend",
}

SEMANTIC_RATERS = {"gemini": "aiprod.adapters.gemini_qa:GeminiRater"}  # by AIPROD_QA_SEMANTIC


def _load(target: str):
    module, _, attribute = target.partition(":")
    return getattr(importlib.import_module(module), attribute)


def _simulated(name: str, settings: Settings, catalog: Catalog, clock) -> VideoBackend:
    simulated = _load("aiprod.adapters.simulated:SimulatedBackend")
    return simulated(name, catalog, settings.simulation.get(name), clock)


def _live(name: str, settings: Settings, catalog: Catalog, clock) -> VideoBackend:
    """The real adapter, its outputs kept in the bucket."""
    if name not in LIVE_BACKENDS:
        raise KeyError(f"no live adapter for backend {name!r}")
    adapter = _load(LIVE_BACKENDS[name])(settings.providers, catalog, settings.project)
    kept = _load("aiprod.adapters.kept_outputs:KeptOutputs")
    rater = None
    if settings.providers.semantic_qa.on:  # google-genai is loaded on the first rating
        rater = _load(SEMANTIC_RATERS[settings.providers.semantic_qa.mode])
        rater = rater(settings.providers, settings.project)
    return kept(adapter, settings.providers, settings.project, catalog, rater)


BACKEND_MODES = {"simulated": _simulated, "live": _live}  # by settings.provider_mode


def make_backend(name: str, settings: Settings, catalog: Catalog, clock) -> VideoBackend:
    """The provider adapter for a backend, as configured (simulated unless told otherwise)."""
    if settings.provider_mode not in BACKEND_MODES:
        raise NotImplementedError(f"provider mode {settings.provider_mode!r} is not available")
    return BACKEND_MODES[settings.provider_mode](name, settings, catalog, clock)


# The spend audit's view of each provider (``SpendSource``), in live mode: each in its
# provider's module (Veo's is the output bucket, so it lives with the storage adapter).
LIVE_SPEND_SOURCES: dict[str, str] = {
    "runway": "aiprod.adapters.runway:RunwaySpend",
    "veo": "aiprod.adapters.veo_outputs:VeoOutputs",
    "replicate": "aiprod.adapters.replicate:ReplicateSpend",
}
SPEND_MODES = {
    "simulated": lambda name, *_: _load("aiprod.adapters.simulated:SimulatedSpend")(name),
    "live": lambda name, settings, catalog: _load(LIVE_SPEND_SOURCES[name])(
        settings.providers, catalog, settings.project
    ),
}


def make_spend_source(name: str, settings: Settings, catalog: Catalog) -> SpendSource:
    """What the spend audit asks about a backend, as configured (like ``make_backend``)."""
    if settings.provider_mode not in SPEND_MODES:
        raise NotImplementedError(f"provider mode {settings.provider_mode!r} is not available")
    return SPEND_MODES[settings.provider_mode](name, settings, catalog)


def _cloud_sink(settings: Settings, clock, job: str, _: str) -> MetricSink:
    cloud = importlib.import_module("aiprod.adapters.cloud_monitoring")
    namespace = settings.prefix.strip("-") or "aiprod"
    resource = cloud.TaskResource(settings.project, settings.region, namespace, job, instance_id())
    return cloud.CloudMonitoringSink(resource, clock=clock, bound_s=settings.metrics_flush_s)


def _jsonl_sink(settings: Settings, clock, job: str, path: str) -> MetricSink:
    jsonl = _load("aiprod.adapters.local_metrics:JsonLinesSink")
    return jsonl(Path(path), clock, job=job, task_id=instance_id())


# By settings.metrics (AIPROD_METRICS): the whole value, or its prefix up to ':' included.
METRIC_SINKS = {
    "cloud": _cloud_sink,
    "jsonl:": _jsonl_sink,
    "memory": lambda _, clock, *__: _load("aiprod.adapters.local_metrics:MemorySink")(clock),
    "off": lambda *_: NullSink(),
}


def make_metric_sink(settings: Settings, clock: Callable[[], float]) -> MetricSink:
    """Where this process's metrics go (``settings.metrics``), written as this instance."""
    job = os.environ.get("FUNCTION_TARGET") or os.environ.get("K_SERVICE") or "aiprod"
    mode, colon, argument = settings.metrics.partition(":")
    if mode + colon not in METRIC_SINKS:
        raise ConfigError("AIPROD_METRICS must be cloud, memory, off or jsonl:<path>")
    return METRIC_SINKS[mode + colon](settings, clock, job, argument)


@cache
def instance_id() -> str:
    """Unique per process: the generic_task task_id, so no two instances share a series."""
    return f"{os.environ.get('K_REVISION', 'local')}-{uuid.uuid4().hex[:12]}"
