"""Which backends may render a job, in what order, and which one gets the next attempt.

Pure: the catalog, circuit states, observed quality and ledger entries come in as values.
Each backend appears at most once in a chain (with its best model for the job), so fallback
can never cycle. A model's quality is its catalog prior blended with what its checked outputs
measured (``observed_quality.blended``): ``quality_min`` and the QUALITY ordering use the
blend, so a model whose outputs degrade stops being chosen for a floor it no longer meets.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from aiprod.domain.budget import BudgetState, BudgetTotals, Thresholds, headroom, tightest
from aiprod.domain.catalog import Catalog, ModelSpec
from aiprod.domain.health import OUTPUT_STORE, Circuit
from aiprod.domain.jobs import ChainStep
from aiprod.domain.messages import JobRequest, Priority, RejectReason
from aiprod.domain.observed_quality import ObservedBook, blended, lookup


@dataclass(frozen=True)
class Candidate:
    backend: str
    model: str
    hold_micros: int
    quality: float
    latency_s: int
    rank: int

    def step(self) -> ChainStep:
        return ChainStep(backend=self.backend, model=self.model, hold_micros=self.hold_micros)


@dataclass(frozen=True)
class Plan:
    """The ordered chain for a new job, or why it cannot be admitted."""

    chain: tuple[Candidate, ...] = ()
    first: Candidate | None = None
    rejection: RejectReason | None = None
    message: str = ""
    budget_state: BudgetState = BudgetState.NORMAL


# How each priority orders candidates; ties fall back to the catalog's fallback order.
ORDERINGS = {
    Priority.QUALITY: lambda c: (-c.quality, c.rank, c.hold_micros),
    Priority.COST: lambda c: (c.hold_micros, c.rank),
    Priority.SPEED: lambda c: (c.latency_s, c.rank),
}


def _fits_request(spec: ModelSpec, request: JobRequest, quality: float) -> bool:
    return (
        request.input_kind in spec.inputs
        and request.duration_s in spec.durations_s
        and request.aspect_ratio in spec.aspect_ratios
        and request.resolution in spec.resolutions
        and quality >= request.quality_min
    )


def candidates(
    request: JobRequest,
    catalog: Catalog,
    observed: ObservedBook | None = None,
    now: float = 0.0,
    qa_hold: int = 0,
) -> list[Candidate]:
    """The best capable, priced, affordable model of each allowed backend, at its blended
    quality (the catalog's alone when nothing was observed). Each hold is the render's price
    plus ``qa_hold``, what rating the output may cost (``semantic_qa``): the user's
    ``max_cost_usd`` covers both, as both are charged."""
    allowed = set(request.backends) if request.backends else set(catalog.backends)
    limit = request.max_cost_micros
    found: list[Candidate] = []
    for backend in catalog.fallback_order:
        if backend not in allowed:
            continue
        options = []
        for name, spec in catalog.backends[backend].models.items():
            price = spec.price_for(request.resolution, request.duration_s)
            quality = blended(spec.quality, lookup(observed, backend, name), now)
            if price is None or not _fits_request(spec, request, quality):
                continue  # unpriced means refused, never free
            hold = price + qa_hold
            if limit is not None and hold > limit:
                continue
            rank = catalog.rank(backend)
            options.append(Candidate(backend, name, hold, quality, spec.typical_latency_s, rank))
        if options:
            found.append(min(options, key=ORDERINGS[request.priority]))
    return found


def plan_route(
    request: JobRequest,
    catalog: Catalog,
    circuits: Mapping[str, Circuit],
    entries: list[BudgetTotals],
    thresholds: Thresholds,
    now: float,
    observed: ObservedBook | None = None,
    qa_hold: int = 0,
) -> Plan:
    """Admission for a new job: known backend names, capability (at the blended quality),
    circuit state, then the budget policy."""
    unknown = catalog.unknown_backends(request.backends)
    if unknown:
        return Plan(rejection=RejectReason.INVALID, message=_unknown_message(unknown, catalog))
    capable = candidates(request, catalog, observed, now, qa_hold)
    if not capable:
        return Plan(
            rejection=RejectReason.NO_CAPABLE_BACKEND,
            message=_no_capable_message(request),
        )
    if not _admits(circuits, OUTPUT_STORE, now):
        return Plan(
            rejection=RejectReason.OUTPUT_STORE_UNAVAILABLE,
            message="outputs cannot be kept: the output bucket keeps failing (circuit open)",
        )
    available = [c for c in capable if _admits(circuits, c.backend, now)]
    if not available:
        names = ", ".join(c.backend for c in capable)
        return Plan(
            rejection=RejectReason.NO_CAPABLE_BACKEND,
            message=f"every capable backend is unavailable (circuit open): {names}",
        )
    state = tightest(entries, thresholds)
    if state in (BudgetState.CRITICAL, BudgetState.EXHAUSTED):
        return Plan(
            rejection=RejectReason.BUDGET_CRITICAL,
            message=f"budget is {state.value}: no new jobs are admitted today",
            budget_state=state,
        )
    priority = Priority.COST if state is BudgetState.WARNING else request.priority
    chain = tuple(sorted(available, key=ORDERINGS[priority]))
    room = headroom(entries)
    first = next((c for c in chain if c.hold_micros <= room), None)
    if first is None:
        cheapest = min(c.hold_micros for c in chain)
        return Plan(
            chain=chain,
            rejection=RejectReason.OVER_BUDGET,
            message=f"cheapest capable hold {cheapest} micro-USD exceeds headroom {room}",
            budget_state=state,
        )
    return Plan(chain=chain, first=first, budget_state=state)


def fallback_steps(
    chain: list[ChainStep], tried: list[str], circuits: Mapping[str, Circuit], now: float
) -> list[ChainStep]:
    """The untried backends of the planned chain that are up, in chain order (the budget
    decides in the transaction which of them can actually hold)."""
    return [s for s in chain if s.backend not in tried and _admits(circuits, s.backend, now)]


def _admits(circuits: Mapping[str, Circuit], backend: str, now: float) -> bool:
    circuit = circuits.get(backend)
    return circuit is None or circuit.admits(now)


def _unknown_message(unknown: list[str], catalog: Catalog) -> str:
    """Worded like a field error of the contract: the field, then why."""
    names = ", ".join(repr(n) for n in unknown)
    known = ", ".join(sorted(catalog.backends))
    return f"backends: unknown backend {names} (known: {known})"


def _no_capable_message(request: JobRequest) -> str:
    parts = [
        f"{request.input_kind} input",
        f"{request.duration_s}s",
        request.aspect_ratio,
        request.resolution,
        f"quality >= {request.quality_min}",
    ]
    if request.max_cost_usd is not None:
        parts.append(f"cost <= ${request.max_cost_usd}")
    if request.backends:
        parts.append(f"backends {request.backends}")
    return "no backend model supports " + ", ".join(parts)
