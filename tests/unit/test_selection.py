"""Which backends may render a job, in what order, and where a fallback goes next."""

from __future__ import annotations

import copy
import json
from importlib import resources

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiprod.domain.budget import BudgetState, BudgetTotals, Thresholds
from aiprod.domain.catalog import default_catalog, parse_catalog
from aiprod.domain.health import Circuit
from aiprod.domain.jobs import ChainStep
from aiprod.domain.messages import JobRequest, RejectReason
from aiprod.domain.selection import candidates, fallback_steps, plan_route

NOW = 10_000.0
LIMIT = 10_000_000
CATALOG = default_catalog()


def request(**fields) -> JobRequest:
    return JobRequest.model_validate_json(json.dumps({"job_id": "j", "prompt": "p", **fields}))


def ledger(spent: int = 0, limit: int = LIMIT, scope: str = "global") -> BudgetTotals:
    return BudgetTotals(scope, "2027-01-15", limit, spent_micros=spent)


def plan(req: JobRequest, circuits=None, entries=None, catalog=CATALOG):
    entries = [ledger()] if entries is None else entries
    return plan_route(req, catalog, circuits or {}, entries, Thresholds(), NOW)


def route(req: JobRequest, **kw) -> list[tuple[str, str]]:
    return [(c.backend, c.model) for c in plan(req, **kw).chain]


@pytest.fixture(scope="module")
def uniform_catalog():
    """Every backend can render a 5 s text clip, with distinct price and latency orders."""
    raw = json.loads(resources.files("aiprod").joinpath("data/catalog.json").read_text())
    raw = copy.deepcopy(raw)
    for backend in raw["backends"].values():
        for model in backend["models"].values():
            model["durations_s"] = sorted(set(model["durations_s"]) | {5})
    replicate = raw["backends"]["replicate"]["models"]
    replicate["wan-video/wan-2.2-t2v-fast"]["typical_latency_s"] = 120
    return parse_catalog(json.dumps(raw))


# -- capabilities -----------------------------------------------------------------------------


def test_text_five_seconds_goes_to_runway_then_replicate():
    # Veo only renders 4, 6 or 8 s; gen4_turbo takes images only
    assert route(request()) == [("runway", "gen4.5"), ("replicate", "wan-video/wan-2.2-t2v-fast")]


def test_image_input_picks_image_models_and_the_cheaper_runway_model():
    # gen4_turbo and gen4.5 have equal quality: the cheaper one (5 credits/s) is chosen
    chain = route(request(image_uri="gs://b/i.png"))
    assert chain == [("runway", "gen4_turbo"), ("replicate", "wan-video/wan-2.2-i2v-fast")]


def test_eight_seconds_excludes_replicate_but_not_runway_gen45():
    # gen4.5 supports 2-10 s; replicate's wan models only 5 s
    assert route(request(duration_s=8)) == [
        ("runway", "gen4.5"),
        ("veo", "veo-3.1-fast-generate-001"),
    ]


def test_ten_second_image_clip_is_runway_only():
    assert [b for b, _ in route(request(duration_s=10, image_uri="gs://b/i.png"))] == ["runway"]


def test_square_aspect_ratio_is_runway_only():
    assert [b for b, _ in route(request(aspect_ratio="1:1"))] == ["runway"]


def test_1080p_is_veo_only():
    assert [b for b, _ in route(request(duration_s=8, resolution="1080p"))] == ["veo"]


def test_480p_is_replicate_only():
    assert [b for b, _ in route(request(resolution="480p"))] == ["replicate"]


@pytest.mark.parametrize(
    ("quality_min", "backends"),
    [(0.0, ["runway", "veo"]), (0.92, ["runway", "veo"]), (0.93, ["runway"]), (0.95, ["runway"])],
)
def test_quality_floor_filters_models(quality_min, backends):
    assert [b for b, _ in route(request(duration_s=8, quality_min=quality_min))] == backends


def test_max_cost_excludes_models_whose_worst_case_is_above_it():
    # runway gen4.5 5 s = $0.60; replicate 5 s 720p = $0.10
    assert [b for b, _ in route(request(max_cost_usd=0.5))] == ["replicate"]
    assert [b for b, _ in route(request(max_cost_usd=0.1))] == ["replicate"]
    assert [b for b, _ in route(request(max_cost_usd=0.6))] == ["runway", "replicate"]


def test_backend_allow_list_limits_the_chain():
    assert [b for b, _ in route(request(duration_s=8, backends=["veo", "replicate"]))] == ["veo"]
    assert [b for b, _ in route(request(backends=["replicate"]))] == ["replicate"]


@pytest.mark.parametrize(
    "fields",
    [
        {"duration_s": 11},
        {"resolution": "1080p"},  # 5 s in 1080p: veo has no 5 s
        {"quality_min": 0.96},
        {"max_cost_usd": 0.09},
        {"backends": ["replicate"], "duration_s": 8, "resolution": "1080p"},
        {"aspect_ratio": "1:1", "resolution": "480p"},
    ],
)
def test_no_capable_backend_is_a_rejection_with_a_reason(fields):
    result = plan(request(**fields))
    assert result.rejection is RejectReason.NO_CAPABLE_BACKEND
    assert result.first is None and result.chain == ()
    assert result.message.startswith("no backend model supports text input")


@pytest.mark.parametrize("backends", [["sora"], ["runway", "sora", "sora"], ["Runway"]])
def test_an_unknown_backend_name_is_invalid_naming_the_field(backends):
    result = plan(request(backends=backends))
    assert result.rejection is RejectReason.INVALID
    assert result.first is None and result.chain == ()
    unknown = next(b for b in backends if b != "runway")
    assert result.message.startswith(f"backends: unknown backend {unknown!r} (known: ")


# -- priorities -------------------------------------------------------------------------------


def test_quality_priority_follows_the_product_ranking(uniform_catalog):
    chain = route(request(priority="quality"), catalog=uniform_catalog)
    assert [b for b, _ in chain] == ["runway", "veo", "replicate"]


def test_cost_priority_puts_the_cheapest_hold_first(uniform_catalog):
    result = plan(request(priority="cost"), catalog=uniform_catalog)
    assert [c.backend for c in result.chain] == ["replicate", "veo", "runway"]
    holds = [c.hold_micros for c in result.chain]
    assert holds == sorted(holds) == [100_000, 500_000, 600_000]


def test_speed_priority_puts_the_lowest_latency_first(uniform_catalog):
    result = plan(request(priority="speed"), catalog=uniform_catalog)
    assert [(c.backend, c.latency_s) for c in result.chain] == [
        ("veo", 45),
        ("runway", 90),
        ("replicate", 120),
    ]


def test_each_priority_picks_its_own_best_model_within_a_backend():
    # Veo standard and fast have equal quality; speed and cost both pick fast
    for priority in ("quality", "cost", "speed"):
        models = dict(route(request(duration_s=8, priority=priority)))
        assert models["veo"] == "veo-3.1-fast-generate-001"


# -- budget policy ----------------------------------------------------------------------------


def test_warning_state_routes_cheapest_first_whatever_the_priority(uniform_catalog):
    # GIVEN the day at 75 % of its limit
    entries = [ledger(spent=int(LIMIT * 0.75))]

    # WHEN a quality-first job is planned
    result = plan(request(priority="quality"), entries=entries, catalog=uniform_catalog)

    # THEN it is admitted, cheapest first
    assert result.budget_state is BudgetState.WARNING
    assert [c.backend for c in result.chain] == ["replicate", "veo", "runway"]
    assert result.first.backend == "replicate"


@pytest.mark.parametrize("share", [0.90, 0.95, 1.0])
def test_critical_or_exhausted_budget_admits_no_new_job(share):
    result = plan(request(), entries=[ledger(spent=int(LIMIT * share))])
    assert result.rejection is RejectReason.BUDGET_CRITICAL
    assert result.first is None


def test_a_critical_tenant_blocks_its_job_while_global_is_fine():
    entries = [ledger(), ledger(spent=950_000, limit=1_000_000, scope="tenant:acme")]
    assert plan(request(tenant="acme"), entries=entries).rejection is RejectReason.BUDGET_CRITICAL


def test_first_step_skips_a_backend_whose_hold_exceeds_the_headroom():
    # GIVEN 500k left of 1M (normal state) and runway's 600k hold first in the chain
    entries = [ledger(spent=500_000, limit=1_000_000)]

    # THEN the job starts on the next backend that fits, keeping the full chain
    result = plan(request(), entries=entries)
    assert result.first.backend == "replicate"
    assert [c.backend for c in result.chain] == ["runway", "replicate"]


def test_headroom_below_every_hold_is_over_budget():
    entries = [ledger(spent=500_000, limit=1_000_000)]
    result = plan(request(backends=["runway"]), entries=entries)
    assert result.rejection is RejectReason.OVER_BUDGET
    assert "600000" in result.message and "500000" in result.message


# -- circuits ---------------------------------------------------------------------------------


def open_circuit(backend: str) -> Circuit:
    circuit = Circuit(backend)
    for _ in range(3):
        circuit = circuit.record_failure(NOW - 10, "unavailable")
    return circuit  # open until NOW + 50


def test_open_circuit_is_left_out_of_the_chain():
    assert [b for b, _ in route(request(), circuits={"runway": open_circuit("runway")})] == [
        "replicate"
    ]


def test_every_capable_backend_open_is_a_rejection():
    circuits = {"runway": open_circuit("runway"), "replicate": open_circuit("replicate")}
    result = plan(request(), circuits=circuits)
    assert result.rejection is RejectReason.NO_CAPABLE_BACKEND
    assert "circuit open" in result.message


def test_circuit_past_its_cooldown_is_offered_for_a_probe():
    circuits = {"runway": open_circuit("runway")}
    later = plan_route(request(), CATALOG, circuits, [ledger()], Thresholds(), NOW + 60)
    assert later.first.backend == "runway"


REQUESTS = st.fixed_dictionaries(
    {},
    optional={
        "image_uri": st.just("gs://b/i.png"),
        "duration_s": st.integers(1, 12),
        "aspect_ratio": st.sampled_from(["16:9", "9:16", "1:1"]),
        "resolution": st.sampled_from(["480p", "720p", "1080p"]),
        "quality_min": st.sampled_from([0.0, 0.75, 0.9, 0.95]),
        "priority": st.sampled_from(["quality", "cost", "speed"]),
        "max_cost_usd": st.sampled_from([0.1, 0.5, 1.0, 5.0]),
    },
)


@settings(max_examples=200, deadline=None)
@given(fields=REQUESTS, spent=st.integers(0, LIMIT))
def test_chain_names_each_backend_once_and_every_step_fits_the_request(fields, spent):
    # GIVEN any request shape and any spend so far
    req = request(**fields)

    # WHEN its route is planned
    result = plan(req, entries=[ledger(spent=spent)])

    # THEN each capable backend appears once, priced for this job, and the first step fits
    backends = [c.backend for c in result.chain]
    assert len(backends) == len(set(backends))
    for c in result.chain:
        spec = CATALOG.model(c.backend, c.model)
        assert c.hold_micros == spec.price_for(req.resolution, req.duration_s)
        assert req.max_cost_micros is None or c.hold_micros <= req.max_cost_micros
    if result.first is not None:
        assert result.first.hold_micros <= LIMIT - spent
    if result.chain:
        assert sorted(backends) == sorted(c.backend for c in candidates(req, CATALOG))


# -- fallback ---------------------------------------------------------------------------------

CHAIN = [
    ChainStep(backend="runway", model="gen4.5", hold_micros=960_000),
    ChainStep(backend="veo", model="veo-3.1-fast-generate-001", hold_micros=800_000),
    ChainStep(backend="replicate", model="wan-video/wan-2.2-t2v-fast", hold_micros=100_000),
]


def _backends(steps) -> list[str]:
    return [step.backend for step in steps]


def test_fallback_steps_are_the_untried_backends_in_chain_order():
    assert _backends(fallback_steps(CHAIN, ["runway"], {}, NOW)) == ["veo", "replicate"]
    assert _backends(fallback_steps(CHAIN, ["runway", "veo"], {}, NOW)) == ["replicate"]


def test_fallback_steps_skip_an_open_circuit():
    circuits = {"veo": open_circuit("veo")}
    assert _backends(fallback_steps(CHAIN, ["runway"], circuits, NOW)) == ["replicate"]


def test_fallback_steps_are_empty_when_every_backend_was_tried():
    assert fallback_steps(CHAIN, ["runway", "veo", "replicate"], {}, NOW) == []
