"""``aiprod spend audit`` and the reconciler's hourly pass: the ledger against what each
provider says ran (``domain.spend_audit`` decides; this module gathers and applies).

For each provider with a ``SpendSource``: read its view of the budget day (outside any
transaction), compare it with the attempts of the jobs updated since the day began and the
charges already made, then apply each charge in its own transaction: the charge's record
(``repositories.unattributed``, one per charge id) and the spend on a global shard commit
together, and only the difference between the record and the target is charged, so a
repeated or concurrent audit never charges a task twice. A provider that cannot be read is
reported and the others are still audited.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import partial

from aiprod.config import Settings
from aiprod.domain import spend_audit as rules
from aiprod.domain.budget import budget_day
from aiprod.domain.catalog import Catalog
from aiprod.domain.jobs import Attempt, Job
from aiprod.domain.ledger import parse_shard_key
from aiprod.ports import DocumentStore, SpendSource, Transaction
from aiprod.repositories import jobs, unattributed
from aiprod.repositories.unattributed import UnattributedCharge
from aiprod.services.budget_audit import MARGIN_S, day_start
from aiprod.services.ledger import Ledger
from aiprod.services.telemetry import Telemetry, null_telemetry

log = logging.getLogger(__name__)
SCOPE = "global"
MAX_JOBS = 100_000


@dataclass
class ProviderAudit:
    provider: str
    tasks: int = 0  # renders the provider showed for the day
    total_micros: int | None = None  # its own total, where it reports one
    recorded_micros: int = 0  # what our attempts of the day put on the books for it
    charged: list[tuple[rules.Charge, int]] = field(default_factory=list)  # (charge, added)
    error: str | None = None  # the provider could not be read

    @property
    def charged_micros(self) -> int:
        return sum(added for _, added in self.charged)


@dataclass
class SpendAuditReport:
    day: str
    providers: list[ProviderAudit]
    unattributed: list[UnattributedCharge]  # every charge of the day, this run's included

    @property
    def charged_micros(self) -> int:
        return sum(p.charged_micros for p in self.providers)

    @property
    def ok(self) -> bool:
        """Nothing newly found unrecorded, and every provider read."""
        return not self.charged_micros and not any(p.error for p in self.providers)

    def to_json(self) -> dict:
        return {
            "day": self.day,
            "charged_micros": self.charged_micros,
            "providers": {
                p.provider: {
                    "tasks": p.tasks,
                    "total_micros": p.total_micros,
                    "recorded_micros": p.recorded_micros,
                    "charged": [
                        {"charge_id": c.charge_id, "added_micros": a, "reason": c.reason}
                        for c, a in p.charged
                    ],
                    "error": p.error,
                }
                for p in self.providers
            },
            "unattributed_micros": sum(c.amount_micros for c in self.unattributed),
        }


class SpendAudit:
    def __init__(
        self,
        store: DocumentStore,
        settings: Settings,
        sources: Callable[[], Mapping[str, SpendSource]],
        catalog: Catalog,
        ledger: Ledger,
        clock: Callable[[], float],
        telemetry: Telemetry | None = None,
    ):
        self._store, self._settings, self._sources = store, settings, sources
        self._catalog, self._ledger, self._clock = catalog, ledger, clock
        self._telemetry = telemetry or null_telemetry()
        self._grace_s = settings.lease_s

    def run(self, day: str) -> SpendAuditReport:
        start = day_start(day, self._settings.timezone)
        # renders younger than a lease may not have stored their task id yet: next time
        end = min(day_start(_next(day), self._settings.timezone), self._clock() - self._grace_s)
        scanned = jobs.updated_since(self._store, start - MARGIN_S, MAX_JOBS)
        charged = unattributed.of_day(self._store, day)
        audits = [
            self._audit(source, day, start, end, scanned, charged)
            for source in self._sources().values()
        ]
        return SpendAuditReport(day, audits, unattributed.of_day(self._store, day))

    def hourly(self, now: float) -> int:
        """The reconciler's pass: the first sweep of each UTC hour audits today (and, in the
        first hour of a budget day, the day before, whose last renders may have ended since)."""
        hour = datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%dT%H")
        if not unattributed.claim_run(self._store, hour, now):
            return 0
        zone = self._settings.timezone
        days = {budget_day(now, zone): None}
        if budget_day(now - 3600, zone) not in days:
            days[budget_day(now - 3600, zone)] = None  # the day that just ended, once more
        for day in days:
            self.run(day)
        return 1

    def _audit(self, source, day, start, end, scanned, charged) -> ProviderAudit:
        provider = source.provider
        audit = ProviderAudit(provider)
        books, stored = _books(provider, day, scanned, charged)
        audit.recorded_micros = books.recorded_micros
        try:
            seen = source.day(day, start, end, stored)
        except Exception as exc:
            log.exception("spend audit: %s could not be read", provider)
            audit.error = f"{type(exc).__name__}: {exc}"[:300]
            return audit
        audit.tasks, audit.total_micros = len(seen.tasks), seen.total_micros
        worst = partial(rules.worst_case, self._catalog, provider)
        for charge in rules.compare(seen, books, worst):
            added = self._store.run_transaction(partial(self._apply, charge))
            if added:
                audit.charged.append((charge, added))
                self._telemetry.spend_unrecorded(provider, added)
                log.warning(
                    "spend audit: %s charged unattributed", provider,
                    extra={"event": "spend_unrecorded", "charge_id": charge.charge_id,
                           "added_micros": added, "reason": charge.reason},
                )  # fmt: skip
        return audit

    def _apply(self, charge: rules.Charge, tx: Transaction) -> int:
        """Bring the charge's record up to its target, charging the difference (0: done)."""
        record = unattributed.load(tx, charge.charge_id)
        added = charge.target_micros - (record.amount_micros if record else 0)
        if added <= 0:
            return 0
        key = self._ledger.charge(tx, SCOPE, charge.day, charge.charge_id, added)
        ids = sorted({*(record.provider_ids if record else ()), *charge.provider_ids})
        unattributed.save(
            tx,
            UnattributedCharge(
                charge.charge_id, charge.provider, charge.day, SCOPE, charge.target_micros,
                key, ids, charge.reason, self._clock(),
            ),
        )  # fmt: skip
        return added


def _books(provider: str, day: str, scanned: list[Job], charged) -> tuple[rules.Books, list[str]]:
    """The provider's side of the books: its attempts by task key, what those of ``day``
    recorded, the charges already made, and the stored task ids whose attempts charged 0."""
    attempts: dict[str, rules.Recorded] = {}
    recorded, stored, estimates = 0, [], {}
    for job in scanned:
        for attempt in (a for a in job.attempts if a.backend == provider):
            # a pending late task is charged by the reconciler when it finishes: open until then
            pending = attempt.holds_budget or attempt.late_task_lease is not None
            seen = rules.Recorded(pending, provider_cost(attempt), attempt.hold_micros)
            for key in task_keys(job, attempt):
                attempts[key] = seen
            if attempt.provider_task_id and not seen.open and not seen.cost_micros:
                stored.append(attempt.provider_task_id)
            if not attempt.ledger_keys or parse_shard_key(attempt.ledger_keys[0])[1] != day:
                continue
            recorded += seen.covers
            if attempt.cost_estimated and attempt.provider_task_id is None:
                # this day's unconfirmed create, charged its hold: it may be an orphan below
                estimates.setdefault(attempt.model, []).append(attempt.cost_micros)
    for holds in estimates.values():
        holds.sort()
    mine = {c.charge_id: c.amount_micros for c in charged if c.provider == provider}
    return rules.Books(attempts, recorded, mine, estimates), stored


def provider_cost(attempt: Attempt) -> int:
    """What the attempt recorded for the provider's render: its cost less the semantic
    rating's (Gemini's, charged with it but never on this provider's bill)."""
    qa = attempt.outcome.qa if attempt.outcome else None
    return attempt.cost_micros - (qa.semantic_cost_micros if qa else 0)


def task_keys(job: Job, attempt: Attempt) -> list[str]:
    """How a provider's task finds its attempt: the stored task id, and the attempt's own
    folder (Veo writes each attempt's video under ``{job_id}/attempt-{n}``)."""
    keys = [f"{job.job_id}/attempt-{attempt.number}"]
    return keys + ([attempt.provider_task_id] if attempt.provider_task_id else [])


def _next(day: str) -> str:
    return (date.fromisoformat(day) + timedelta(days=1)).isoformat()
