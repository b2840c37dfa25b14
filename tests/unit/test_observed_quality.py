"""The blend of a model's catalog prior with what its checked outputs measured, and how
selection uses it (pure: no store)."""

from __future__ import annotations

import json

import pytest

from aiprod.domain.budget import BudgetTotals, Thresholds
from aiprod.domain.catalog import default_catalog
from aiprod.domain.messages import JobRequest, RejectReason
from aiprod.domain.observed_quality import (
    HALF_LIFE_S,
    MAX_LIFT,
    MAX_WEIGHT,
    PRIOR_WEIGHT,
    REFRESH_S,
    Observed,
    blended,
)
from aiprod.domain.selection import plan_route

NOW = 1_000_000.0
CATALOG = default_catalog()
RUNWAY = ("runway", "gen4.5")  # prior 0.95; text, 6 s is also veo's (prior 0.92)


def outputs(*scores: float, record: Observed | None = None, at: float = NOW) -> Observed:
    record = record or Observed()
    for score in scores:
        record = record.record(score, at)
    return record


def request(**fields) -> JobRequest:
    body = {"job_id": "j", "prompt": "p", "duration_s": 6, **fields}
    return JobRequest.model_validate_json(json.dumps(body))


def chain(req: JobRequest, observed=None) -> list[tuple[str, str]]:
    budget = [BudgetTotals("global", "2027-01-15", 10_000_000)]
    plan = plan_route(req, CATALOG, {}, budget, Thresholds(), NOW, observed)
    return [(c.backend, c.model) for c in plan.chain]


def runway_seen(record: Observed) -> dict:
    return {"runway": {"gen4.5": record}}


# -- the blend --------------------------------------------------------------------------------


def test_nothing_observed_is_the_catalog_prior():
    assert blended(0.95, None, NOW) == 0.95
    assert blended(0.95, Observed(), NOW) == 0.95


def test_one_rejected_output_does_not_drop_a_model_its_prior_is_well_above():
    # GIVEN a fresh model (prior 0.95) WHEN its first checked output is rejected (score 0)
    value = blended(0.95, outputs(0.0), NOW)

    # THEN it weighs one output against five of prior: 0.79, still above a 0.75 floor
    assert value == pytest.approx(PRIOR_WEIGHT * 0.95 / (PRIOR_WEIGHT + 1), abs=1e-4)
    assert value >= 0.75


def test_outputs_that_keep_failing_sink_the_model_to_a_fifth_of_its_prior():
    value = blended(0.95, outputs(*[0.0] * 50), NOW)
    assert value == pytest.approx(PRIOR_WEIGHT * 0.95 / (PRIOR_WEIGHT + MAX_WEIGHT), abs=1e-4)


def test_good_outputs_lift_a_model_by_at_most_the_bound():
    assert blended(0.92, outputs(*[1.0] * 50), NOW) == pytest.approx(0.92 + MAX_LIFT)
    assert blended(1.0, outputs(*[1.0] * 50), NOW) == 1.0  # and never above 1


def test_the_weight_is_capped_so_recent_outputs_decide():
    # GIVEN a long good history WHEN the model starts failing
    record = outputs(*[1.0] * 200)
    assert record.weight == MAX_WEIGHT
    failing = outputs(*[0.0] * 20, record=record)

    # THEN twenty failures outweigh two hundred old successes
    assert failing.mean < 0.4
    assert blended(0.95, failing, NOW) < 0.5


def test_a_model_nobody_picks_drifts_back_to_its_prior():
    # GIVEN a model whose outputs all failed
    record = outputs(*[0.0] * 30)

    # WHEN a day passes with no output of it checked (4 half-lives)
    later = NOW + 4 * HALF_LIFE_S

    # THEN its blend is back near the prior, and its next outputs decide again
    assert blended(0.95, record, NOW) < 0.2
    assert blended(0.95, record, later) > 0.75
    assert outputs(0.0, record=record, at=later).weight < MAX_WEIGHT / 2 + 1


def test_a_record_an_output_would_not_change_is_not_written_again_until_it_is_old():
    steady = outputs(*[1.0] * 40)
    assert steady.unchanged_by(1.0, NOW + 60)
    assert not steady.unchanged_by(0.0, NOW + 60)  # a change is always written
    assert not steady.unchanged_by(1.0, NOW + REFRESH_S)  # refreshed now and then
    assert not outputs(1.0).unchanged_by(1.0, NOW)  # the weight still grows


# -- selection at the blended quality ----------------------------------------------------------


def test_a_degrading_model_stops_being_chosen_for_a_floor_it_no_longer_meets():
    req = request(quality_min=0.9)
    assert chain(req)[0] == RUNWAY

    # GIVEN runway's outputs scoring 0.6 again and again (flagged, delivered)
    degraded = runway_seen(outputs(*[0.6] * 25))

    # THEN a job asking for 0.9 goes to veo only; one asking for less still may use runway
    assert [b for b, _ in chain(req, degraded)] == ["veo"]
    assert RUNWAY in chain(request(quality_min=0.6), degraded)


def test_quality_priority_orders_by_the_blend():
    # GIVEN runway (prior 0.95) whose outputs fail half the time, veo (0.92) unobserved
    shaky = runway_seen(outputs(*[1.0, 0.0] * 15))

    # THEN quality-first jobs start on veo, with runway behind it
    assert [b for b, _ in chain(request(), shaky)] == ["veo", "runway"]


def test_no_model_left_above_the_floor_is_refused_as_no_capable_backend():
    failing = {
        "runway": {"gen4.5": outputs(*[0.0] * 20)},
        "veo": {m: outputs(*[0.0] * 20) for m in CATALOG.backends["veo"].models},
    }
    budget = [BudgetTotals("global", "2027-01-15", 10_000_000)]
    plan = plan_route(request(quality_min=0.8), CATALOG, {}, budget, Thresholds(), NOW, failing)
    assert plan.rejection is RejectReason.NO_CAPABLE_BACKEND


def test_a_model_recovers_once_its_outputs_are_good_again():
    req = request(quality_min=0.9)
    failing = outputs(*[0.0] * 20)
    assert RUNWAY not in chain(req, runway_seen(failing))

    # after about fifty good outputs (each weighs 1/20) it leads again
    recovered = outputs(*[1.0] * 60, record=failing)
    assert chain(req, runway_seen(recovered))[0] == RUNWAY
