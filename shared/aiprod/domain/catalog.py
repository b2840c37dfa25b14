"""The backend catalog as validated data: what each model can do and what it costs.

Loaded from ``data/catalog.json`` (versioned with the code). Validation refuses an unpriced
resolution, an unknown key or a fallback order that repeats or names an unknown backend, so a
bad catalog fails at load time rather than pricing a job at zero.

The provider fields of a model (``ratios``, ``generate_audio``, ``params``, ``cost_basis``) are
data too, so switching a Replicate model or correcting a price is a catalog change, not code.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

Param = str | int | float | bool


class _Data(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ModelSpec(_Data):
    quality: Annotated[float, Field(ge=0.0, le=1.0)]
    typical_latency_s: Annotated[int, Field(gt=0)]
    inputs: list[Literal["text", "image"]]
    durations_s: list[Annotated[int, Field(gt=0)]]
    aspect_ratios: list[str]
    resolutions: list[str]
    price_micros_per_s: dict[str, Annotated[int, Field(gt=0)]]
    # Where the price comes from, and "UNCONFIRMED" when no provider page confirmed it.
    price_note: str = ""
    # Provider request data: input kind -> our aspect ratio -> the provider's value (Runway's
    # ``ratio``); whether to ask for audio (Veo; the price above is for that setting); fixed
    # request fields (Replicate ``input``).
    ratios: dict[Literal["text", "image"], dict[str, str]] = Field(default_factory=dict)
    generate_audio: bool | None = None
    params: dict[str, Param] = Field(default_factory=dict)
    # What the provider bills: output seconds at ``price_micros_per_s`` (the hold), or compute
    # time (Replicate ``metrics.predict_time``) at ``hardware_micros_per_s``.
    cost_basis: Literal["output_seconds", "predict_time"] = "output_seconds"
    hardware_micros_per_s: Annotated[int, Field(gt=0)] | None = None
    # Output QA: how far a video's length may be from the request, by the provider's real
    # granularity (None: ``output_qa.DURATION_TOLERANCE_S``).
    duration_tolerance_s: Annotated[float, Field(gt=0, le=5)] | None = None

    @model_validator(mode="after")
    def _every_resolution_priced(self) -> ModelSpec:
        unpriced = set(self.resolutions) - set(self.price_micros_per_s)
        if unpriced:
            raise ValueError(f"resolutions without a price: {sorted(unpriced)}")
        if self.cost_basis == "predict_time" and self.hardware_micros_per_s is None:
            raise ValueError("cost_basis predict_time needs hardware_micros_per_s")
        return self

    def price_for(self, resolution: str, duration_s: int) -> int | None:
        """Worst-case cost in micro-USD, or None when this model has no price for it."""
        per_second = self.price_micros_per_s.get(resolution)
        return None if per_second is None else per_second * duration_s


class Capacity(_Data):
    """How many renders a provider runs for us at a time, and creates a minute where that is
    its limit: versioned defaults here, changed at run time with ``aiprod capacity set`` (up
    to ``max_concurrent``, which the deployed render function is sized for)."""

    concurrent: Annotated[int, Field(ge=1)]
    max_concurrent: Annotated[int, Field(ge=1)]
    creates_per_minute: Annotated[int, Field(ge=1)] | None = None
    note: str = ""

    @model_validator(mode="after")
    def _default_within_the_ceiling(self) -> Capacity:
        if self.concurrent > self.max_concurrent:
            raise ValueError("capacity: concurrent is above max_concurrent")
        return self


class BackendSpec(_Data):
    display_name: str
    models: dict[str, ModelSpec] = Field(min_length=1)
    capacity: Capacity


class Catalog(_Data):
    version: str
    currency: Literal["micro-USD"]
    notes: str = ""
    fallback_order: list[str]
    backends: dict[str, BackendSpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _fallback_order_is_a_chain(self) -> Catalog:
        if len(set(self.fallback_order)) != len(self.fallback_order):
            raise ValueError("fallback_order repeats a backend (chains must be acyclic)")
        unknown = set(self.fallback_order) - set(self.backends)
        if unknown:
            raise ValueError(f"fallback_order names unknown backends: {sorted(unknown)}")
        missing = set(self.backends) - set(self.fallback_order)
        if missing:
            raise ValueError(f"backends missing from fallback_order: {sorted(missing)}")
        return self

    def unknown_backends(self, names: list[str] | None) -> list[str]:
        """The names in ``names`` that are not one of this catalog's backends (the only
        values a request's ``backends`` may list), in the order given, each once."""
        return list(dict.fromkeys(n for n in names or () if n not in self.backends))

    def rank(self, backend: str) -> int:
        return self.fallback_order.index(backend)

    def model(self, backend: str, model: str) -> ModelSpec:
        return self.backends[backend].models[model]


def parse_catalog(text: str) -> Catalog:
    return Catalog.model_validate(json.loads(text))


@cache
def default_catalog() -> Catalog:
    """The catalog shipped in the package (read once per process)."""
    text = resources.files("aiprod").joinpath("data/catalog.json").read_text()
    return parse_catalog(text)
