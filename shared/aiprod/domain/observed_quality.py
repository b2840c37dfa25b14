"""What a model's checked outputs measured, and how far selection believes it over the catalog.

The catalog's ``quality`` is a prior: a judgment made before any output was checked. Each
checked output measures one value (``QaReport.score``: 0 when a technical check failed, else
the semantic score, else 1). Selection uses the blend of both, per backend and model:

    weight  = the observed effective count, halved every HALF_LIFE_S since the last output
    blended = (PRIOR_WEIGHT * prior + weight * mean) / (PRIOR_WEIGHT + weight)
              never above prior + MAX_LIFT, and within 0..1

An output updates the record as a running mean whose effective count is capped at MAX_WEIGHT:
the first 20 outputs count alike, then each new one weighs 1/20 (an exponentially weighted
mean), so recent outputs decide, not the whole history. The constants, and why:

- PRIOR_WEIGHT = 5: one rejected output on a fresh model with prior 0.92 blends to 0.77, so
  one bad output does not exclude a model from the jobs its prior is well above.
- MAX_WEIGHT = 20: observations outweigh the prior at most 4 to 1; a model whose outputs all
  fail falls to a fifth of its prior and stops being chosen for any real ``quality_min``.
- MAX_LIFT = 0.02: good outputs lift a model only a little (a clean technical pass scores 1,
  which says "not broken", not "excellent"). 0.02 is below the smallest gap between distinct
  catalog qualities (0.03), so healthy models keep the catalog's order; the blend is mostly a
  way down.
- HALF_LIFE_S = 6 h: a model nobody picks any more (its blend fell below the jobs'
  ``quality_min``) drifts back toward its prior within about a day, so it gets chosen again
  and its next outputs decide; a bad afternoon does not exclude it for good.

Pure: values in, values out; services/health.py reads and writes the records.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PRIOR_WEIGHT = 5.0
MAX_WEIGHT = 20.0
MAX_LIFT = 0.02
HALF_LIFE_S = 6 * 3600.0
# A record that an output would leave unchanged (to 4 places) is not written again until it is
# this old: a model whose outputs keep scoring the same writes rarely (a shared document).
REFRESH_S = 900.0


@dataclass(frozen=True)
class Observed:
    """One model's checked outputs: their weighted mean and effective count, as of
    ``updated_at``."""

    mean: float = 0.0
    weight: float = 0.0
    updated_at: float = 0.0

    def weight_at(self, now: float) -> float:
        """The effective count left at ``now`` (halved every HALF_LIFE_S of silence)."""
        age = max(0.0, now - self.updated_at)
        return self.weight * 0.5 ** (age / HALF_LIFE_S)

    def record(self, score: float, now: float) -> Observed:
        """One more checked output."""
        score = min(1.0, max(0.0, score))
        weight = min(MAX_WEIGHT, self.weight_at(now) + 1.0)
        mean = self.mean + (score - self.mean) / weight
        return Observed(round(mean, 4), round(weight, 4), now)

    def unchanged_by(self, score: float, now: float) -> bool:
        """Would recording ``score`` now leave this record as it is (so the write can wait)?"""
        after = self.record(score, now)
        fresh = now - self.updated_at < REFRESH_S
        return fresh and (after.mean, after.weight) == (self.mean, self.weight)


# backend -> model -> record; a model absent has no checked output yet
ObservedBook = Mapping[str, Mapping[str, Observed]]


def blended(prior: float, observed: Observed | None, now: float) -> float:
    """The quality selection uses for a model: its catalog prior, moved by what its outputs
    measured (see the module's rule)."""
    if observed is None:
        return prior
    weight = observed.weight_at(now)
    if weight <= 0.0:
        return prior
    value = (PRIOR_WEIGHT * prior + weight * observed.mean) / (PRIOR_WEIGHT + weight)
    return round(min(1.0, prior + MAX_LIFT, max(0.0, value)), 4)


def lookup(book: ObservedBook | None, backend: str, model: str) -> Observed | None:
    if not book:
        return None
    return book.get(backend, {}).get(model)
