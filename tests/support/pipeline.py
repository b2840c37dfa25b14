"""Driving the embedded pipeline, and the fixtures the unit and integration tiers share: a
controllable clock, payload fixtures on disk, and ``pipeline``, a driver for the embedded app
whose store remembers the highest budget commitment it ever held.

Registered for every tier by ``tests/conftest.py`` (``pytest_plugins``).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from aiprod import logs, topology
from aiprod.config import Settings
from aiprod.domain.budget import budget_day
from aiprod.domain.ledger import Shard, day_key, shard_key
from aiprod.domain.tenants import Tenant
from aiprod.repositories import tenants
from aiprod.repositories.ledger import POOLS, SHARDS
from aiprod.services.budget_audit import audit
from aiprod_tools import embedded
from aiprod_tools.client import publish_job, topic_for
from aiprod_tools.embedded import embedded_app
from fakes.clock import FakeClock
from fakes.store import LedgerWatchingStore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


class Pipeline:
    """Drives an embedded app: publish job requests, drain, read what the system recorded."""

    def __init__(self, app):
        self.app = app
        self.store: LedgerWatchingStore = app.store
        self.bus = app.bus

    def run(self, *requests: dict | bytes) -> None:
        """Publish each request as a client would: a tenant's job on its tenant's topic
        (the tenant configured first, with no run-time limit: the settings' limits apply),
        an untenanted one on the shared topic."""
        for request in requests:
            data = request if isinstance(request, bytes) else json.dumps(request).encode()
            tenant = topology.tenant_of_topic(topic_for(data))
            if tenant is not None:
                self.configure_tenant(tenant)
            publish_job(self.bus, data)
        self.drain()

    def configure_tenant(self, tenant: str) -> None:
        """A tenant in the registry and its topic served, once."""
        if tenants.load(self.store, tenant) is None:
            self.store.run_transaction(lambda tx: tenants.save(tx, Tenant(tenant)))
            embedded.serve_tenant(self.app, tenant)

    def drain(self) -> None:
        assert self.bus.drain(20), "the embedded bus did not go idle"

    def job(self, job_id: str) -> dict:
        doc = self.store.get("jobs", job_id)
        assert doc is not None, f"no job document for {job_id}"
        return doc

    def jobs(self) -> list[dict]:
        return self.store.list("jobs")

    def events(self, kind: str | None = None, job_id: str | None = None) -> list[dict]:
        found = [json.loads(m.data) for m in self.bus.published["job-events"]]
        return [
            e
            for e in found
            if (kind is None or e["type"] == kind) and (job_id is None or e["job_id"] == job_id)
        ]

    def submitted(self, backend: str) -> list[str]:
        return list(self.app.backend(backend).submitted)

    def day(self, day: str | None = None) -> str:
        """``day``, or the budget day it is now."""
        return day or budget_day(self.app.clock(), self.app.settings.timezone)

    def key(self, scope: str = "global", day: str | None = None) -> str:
        """A scope's budget day key; the day defaults to the budget day it is now."""
        return day_key(scope, self.day(day))

    def peak_committed(self, scope: str = "global") -> int:
        """The most this scope ever had spent + held today, across every commit."""
        return self.store.peak_committed[self.key(scope)]

    def ledger(self, scope: str = "global", day: str | None = None) -> dict:
        """A scope's day summed over its shards (what the budget CLI shows)."""
        scope_, day_ = scope, self.day(day)
        shards = [d for d in self.store.list(SHARDS) if (d["scope"], d["day"]) == (scope_, day_)]
        if not shards:
            return {}
        fields = ("held_micros", "spent_micros", "overrun_micros", "allot_micros")
        return {f: sum(d[f] for d in shards) for f in fields}

    def seed_ledger(self, scope: str, spent_micros: int) -> None:
        """Spend already on the books today: allotted to shard 0 from the pool, and spent."""
        scope_, day = scope, self.day()
        limit = self.app.settings.limit_for(scope)
        pool = {"scope": scope_, "day": day, "limit_micros": limit}
        self.store.set(POOLS, self.key(scope), {**pool, "unallotted_micros": limit - spent_micros})
        shard = Shard(scope_, day, 0, allot_micros=spent_micros, spent_micros=spent_micros)
        self.store.set(SHARDS, shard.key, asdict(shard))

    def assert_ledger_matches_attempts(self, seeded: dict[str, int] | None = None) -> None:
        """The production audit (``aiprod budget audit``) finds every day's books in line
        with the jobs: each shard holds the open attempts' holds and has spent the closed
        ones' costs, no shard commits past its allotment, allotments and pool add up to the
        limit. The only difference allowed is the spend a test seeded with no job behind it."""
        seeded_spend = {
            shard_key(scope, self.day(), 0): spent for scope, spent in (seeded or {}).items()
        }
        for day in sorted({doc["day"] for doc in self.store.list(SHARDS)}):
            report = audit(self.store, self.app.settings, day)
            assert report.steady and not report.truncated, report
            unexplained = [
                d
                for d in report.discrepancies
                if not (d.check == "spent" and d.found - d.expected == seeded_spend.get(d.key))
            ]
            assert not unexplained, unexplained

    def assert_books_balanced(self, seeded: dict[str, int] | None = None) -> None:
        """No hold outlives its job; the spend equals the cost of the jobs, scope by scope."""
        self.assert_ledger_matches_attempts(seeded)
        jobs = self.jobs()
        for job in jobs:
            assert job["status"] in ("SUCCEEDED", "FAILED", "REJECTED", "CANCELLED"), job["job_id"]
            assert job["cost_micros"] == sum(a["cost_micros"] for a in job["attempts"])
        ledger = self.store.list(SHARDS)
        assert all(doc["held_micros"] == 0 for doc in ledger)
        global_spent = sum(doc["spent_micros"] for doc in ledger if doc["scope"] == "global")
        seeded_global = (seeded or {}).get("global", 0)
        assert global_spent == seeded_global + sum(j["cost_micros"] for j in jobs)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def load_fixture():
    def load(name: str):
        return json.loads((FIXTURES / name).read_text())

    return load


@pytest.fixture
def pipeline(clock, monkeypatch):
    """A factory: ``pipeline(workers=1, simulation={...}, global_limit_micros=...)``."""
    monkeypatch.setattr(embedded, "EmbeddedStore", LedgerWatchingStore)
    built: list[Pipeline] = []

    def build(workers: int = 8, **settings) -> Pipeline:
        settings.setdefault("poll_interval_s", 0.01)
        settings.setdefault("image_buckets", frozenset({"assets", "b"}))  # scenarios' images
        app = embedded_app(Settings(**settings), clock=clock, sleep=clock.sleep, workers=workers)
        built.append(Pipeline(app))
        return built[-1]

    yield build
    for driver in built:
        driver.bus.close()


@pytest.fixture
def trace_reset():
    """Keep a test's trace context from leaking into the next one."""
    token = logs.trace_context.set(None)
    yield
    logs.trace_context.reset(token)
