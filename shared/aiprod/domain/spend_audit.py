"""The spend audit's comparison: what a provider says ran on a day against what the books
recorded. Pure: the service gathers both sides and applies the charges this decides.

A provider shows tasks (Replicate's predictions, Veo's objects in the output bucket, Runway's
tasks we stored) and, where it reports one, a day's total (Runway's organization usage). A
task is **unrecorded** when the provider billed it (or may have) and no attempt accounts for
it: no attempt carries its id (an orphan), or the attempt that does was closed charging
nothing. A total is unrecorded by the amount it exceeds what the books hold for that provider.
Each unrecorded amount becomes a ``Charge`` with a stable id, so an audit run again finds it
already charged and charges nothing more (a total's charge grows to the latest excess).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from aiprod.domain.catalog import Catalog


@dataclass(frozen=True)
class ProviderTask:
    """One render the provider knows of. ``key`` matches an attempt (its provider task id,
    or for Veo ``{job_id}/attempt-{n}``); ``billed`` is True when the provider charged it,
    None when it cannot say (then only a task with no attempt at all is charged)."""

    key: str
    provider_id: str
    model: str = ""
    status: str = ""
    billed: bool | None = None
    cost_micros: int | None = None  # what the provider charged, when it says


@dataclass(frozen=True)
class ProviderDay:
    provider: str
    day: str
    tasks: tuple[ProviderTask, ...] = ()
    total_micros: int | None = None  # a provider-wide total for the day (Runway's usage)


@dataclass(frozen=True)
class Recorded:
    """What one attempt put on the books: its cost once closed, its hold while open."""

    open: bool
    cost_micros: int
    hold_micros: int

    @property
    def covers(self) -> int:
        return self.hold_micros if self.open else self.cost_micros


@dataclass(frozen=True)
class Books:
    """One provider's side of the books for the day."""

    attempts: Mapping[str, Recorded]  # by task key
    recorded_micros: int  # closed attempts' costs + open attempts' holds, on this day
    charged: Mapping[str, int] = field(default_factory=dict)  # charge id → charged so far
    # model → attempts closed charging their hold for a create nobody could confirm (no task
    # id): an orphan of that model may be that very create, already covered by the hold
    estimates: Mapping[str, list[int]] = field(default_factory=dict)  # model → holds charged


@dataclass(frozen=True)
class Charge:
    charge_id: str  # stable: one record per provider task, one per provider and day (total)
    provider: str
    day: str
    target_micros: int  # what the record must reach; the difference is charged now
    provider_ids: tuple[str, ...]
    reason: str  # orphan (no attempt), unrecorded (attempt closed at 0), total


def task_charge_id(provider: str, key: str) -> str:
    return f"{provider}:{key}".replace("/", "~")


def total_charge_id(provider: str, day: str) -> str:
    return f"{provider}:total@{day}"


def compare(seen: ProviderDay, books: Books, worst: Callable[[str], int]) -> list[Charge]:
    """The charges the provider's view calls for; ``worst(model)`` prices a task whose cost
    neither the provider nor an attempt tells (so recorded ≥ billed)."""
    estimates = {model: list(holds) for model, holds in books.estimates.items()}
    charges = [c for t in seen.tasks if (c := _task_charge(seen, t, books, worst, estimates))]
    if seen.total_micros is None:
        return charges
    total_id = total_charge_id(seen.provider, seen.day)
    per_task = sum(v for k, v in books.charged.items() if k != total_id)
    per_task += sum(c.target_micros for c in charges)
    excess = seen.total_micros - books.recorded_micros - per_task
    if excess > books.charged.get(total_id, 0):
        charges.append(Charge(total_id, seen.provider, seen.day, excess, (), "total"))
    return charges


def _task_charge(
    seen: ProviderDay, task: ProviderTask, books: Books, worst, estimates: dict[str, list[int]]
) -> Charge | None:
    charge_id = task_charge_id(seen.provider, task.key)
    recorded = books.attempts.get(task.key)
    if charge_id in books.charged or task.billed is False:
        return None
    covered = 0
    if recorded is None and estimates.get(task.model):
        # an unconfirmed create of this day and model was charged its hold: this orphan may
        # be that very create, so the hold covers it (the smallest hold covering its cost;
        # what a costlier one is past the hold is still charged)
        holds = estimates[task.model]
        cost = task.cost_micros
        fits = [h for h in holds if cost is None or h >= cost]
        covered = fits[0] if fits else holds[-1]
        holds.remove(covered)
        if cost is None or cost <= covered:
            return None
    if recorded is None:
        reason = "orphan"
    elif task.billed and not recorded.open and recorded.cost_micros == 0:
        reason = "unrecorded"
    else:
        return None
    amount = task.cost_micros
    if amount is None:
        amount = recorded.hold_micros if recorded is not None else worst(task.model)
    amount -= covered
    if amount <= 0:
        return None
    return Charge(charge_id, seen.provider, seen.day, amount, (task.provider_id,), reason)


def worst_case(catalog: Catalog, backend: str, model: str = "") -> int:
    """The most one render of ``model`` (any model of the backend when not known) can cost:
    its highest price per second times its longest duration."""
    models = catalog.backends[backend].models
    specs = [models[model]] if model in models else list(models.values())
    return max(max(s.price_micros_per_s.values()) * max(s.durations_s) for s in specs)
