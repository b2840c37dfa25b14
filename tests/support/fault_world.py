"""One scenario of the money-truth fault matrix (issue 10), run and measured: the embedded
pipeline with the live adapters against the wire fakes, a fault armed, the jobs run, then
Cloud Scheduler played (a reconciler sweep every simulated minute) until every job ended or
the time a job can take (its wall time plus leases) ran out.

Shared by ``tests/integration/test_fault_matrix.py`` and ``bench/faults.py``, so it builds
everything itself (no pytest fixture): the fakes, the environment, the clock, the app. The
settings are production's (600 s lease, 480 s render deadline, 5 s polls), so the simulated
recovery times mean what they would in production.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiprod import faults
from aiprod.config import ProviderSettings, Settings
from aiprod.repositories.ledger import SHARDS
from aiprod.services.budget_audit import audit
from aiprod_tools import embedded
from aiprod_tools.embedded import run_schedules
from fakes.clock import FakeClock
from fakes.fixtures import Fakes, start_fakes, stop_fakes
from fakes.storage import StorageEmulator
from fakes.store import LedgerWatchingStore
from support.pipeline import Pipeline

SWEEP_S = 60.0  # Cloud Scheduler calls the reconciler every minute
SETTINGS: dict[str, Any] = {
    "lease_s": 600.0,
    "poll_interval_s": 5.0,
    "render_deadline_s": 480.0,
    "image_buckets": frozenset({"assets"}),
}
GIVE_UP_S = 3600.0 + 3 * 600.0  # the default wall time, and leases on either side of it
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "REJECTED"})


@dataclass
class World:
    """Everything one scenario touches, and what it measures at the end."""

    fakes: Fakes
    pipeline: Pipeline
    clock: FakeClock
    provider: str
    folder: Path
    request_extra: dict[str, Any] = field(default_factory=dict)
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    notes: dict[str, Any] = field(default_factory=dict)  # what a fault wants checked after
    start: float = 0.0
    fault_at: float | None = None  # when the fault struck, if not at the jobs' publication

    @property
    def fake(self) -> Any:
        return getattr(self.fakes, self.provider)

    def docs(self) -> dict[str, dict]:
        return {d.get("job_id") or str(i): d for i, d in enumerate(self.pipeline.jobs())}

    def quarantined(self) -> dict[str, dict]:
        return {k: d for k, d in self.docs().items() if d.get("quarantined_at")}

    def open_jobs(self) -> list[str]:
        """Jobs not yet over, leaving out a quarantined document (an operator's to repair)."""
        docs = self.docs()
        return [
            k
            for k, d in docs.items()
            if d["status"] not in TERMINAL and k not in self.quarantined()
        ]

    def ledger(self) -> dict[str, int]:
        shards = [d for d in self.pipeline.store.list(SHARDS) if d["scope"] == "global"]
        return {f: sum(d[f] for d in shards) for f in ("spent_micros", "held_micros")}

    def recorded_micros(self) -> int:
        """What the books took out of the budget: spent, plus any hold never settled."""
        books = self.ledger()
        return books["spent_micros"] + books["held_micros"]

    def billed(self) -> dict[str, int]:
        servers = (self.fakes.runway, self.fakes.veo, self.fakes.replicate)
        return {task: micros for server in servers for task, micros in server.billed().items()}

    def billed_micros(self) -> int:
        return sum(self.billed().values())

    def recovery_s(self) -> float:
        """Simulated seconds from the fault (``fault_at``, else the jobs' publication: most
        faults here strike in their first render) to the last job's end."""
        struck = self.start if self.fault_at is None else self.fault_at
        ends = [d.get("finished_at") or 0.0 for d in self.docs().values()]
        return max([0.0, *(end - struck for end in ends if end)])

    def creates_by_job(self) -> dict[str, int]:
        """Create calls each job's prompt reached the provider with (every job's prompt
        names it)."""
        counts: dict[str, int] = {}
        for server in (self.fakes.runway, self.fakes.veo, self.fakes.replicate):
            for call in server.calls("POST"):
                prompt = _prompt(call.json() or {})
                if prompt is not None and not call.path.endswith(":fetchPredictOperation"):
                    job_id = prompt.rsplit(" ", 1)[-1]
                    counts[job_id] = counts.get(job_id, 0) + 1
        return counts

    def audit_discrepancies(self) -> list[Any]:
        """The production budget audit (``aiprod budget audit``) of every day on the books."""
        found = []
        for day in sorted({d["day"] for d in self.pipeline.store.list(SHARDS)}):
            report = audit(self.pipeline.store, self.pipeline.app.settings, day)
            assert report.steady and not report.truncated, report
            found += report.discrepancies
        return found

    def sweep(self) -> None:
        run_schedules(self.pipeline.app)

    def requests(self, jobs: int) -> list[dict[str, Any]]:
        base = {"prompt": "a lantern at dusk", **self.request_extra}
        return [
            {**base, "job_id": f"j{i}", "prompt": f"{base['prompt']} j{i}"}
            for i in range(1, jobs + 1)
        ]


def _prompt(body: dict) -> str | None:
    if "promptText" in body:  # Runway
        return body["promptText"]
    if isinstance(body.get("input"), dict):  # Replicate
        return body["input"].get("prompt")
    instances = body.get("instances") or [{}]  # Veo
    return instances[0].get("prompt")


@contextmanager
def environment(values: dict[str, str]) -> Iterator[None]:
    """These variables set for the scenario; the whole environment restored after it."""
    saved = dict(os.environ)
    os.environ.update(values)
    faults._plan.cache_clear()  # failpoints are read from the environment once
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        faults._plan.cache_clear()


def build_pipeline(clock: FakeClock, env: dict[str, str], **settings: Any) -> Pipeline:
    """The embedded app in live mode against the fakes, on a ledger-watching store."""
    providers = ProviderSettings.from_env(env.get)
    original = embedded.EmbeddedStore
    embedded.EmbeddedStore = LedgerWatchingStore
    try:
        config = Settings(provider_mode="live", providers=providers, **{**SETTINGS, **settings})
        app = embedded.embedded_app(config, clock=clock, sleep=clock.sleep, workers=1)
    finally:
        embedded.EmbeddedStore = original
    return Pipeline(app)


def drive(world: World) -> None:
    """Play Cloud Scheduler until every job ended, or a job's longest life has passed."""
    while world.open_jobs() and world.clock.now < world.start + GIVE_UP_S:
        world.clock.advance(SWEEP_S)
        world.sweep()
        world.pipeline.drain()


def summary(world: World) -> dict[str, Any]:
    """The scenario's numbers (what the bench aggregates)."""
    return {
        "recorded_micros": world.recorded_micros(),
        "billed_micros": world.billed_micros(),
        "stuck": len(world.open_jobs()),
        "recovery_s": round(world.recovery_s(), 1),
        "creates": world.creates_by_job(),
    }


def describe(world: World) -> str:
    """The jobs' attempts, for an assertion's message."""
    rows = {
        k: [
            (a["backend"], a["state"], a.get("error_code"), a.get("cost_micros"))
            for a in d["attempts"]
        ]
        if isinstance(d.get("attempts"), list)
        else d.get("attempts")
        for k, d in world.docs().items()
    }
    return json.dumps({"jobs": rows, "billed": world.billed(), **summary(world)}, default=str)


@contextmanager
def opened(provider: str, storage: StorageEmulator, folder: Path) -> Iterator[Fakes]:
    fakes = start_fakes(storage, folder)
    try:
        yield fakes
    finally:
        stop_fakes(fakes)
