"""Making the stuck states the reconciler finds, and sweeping them (the reconciler's
scenarios on the embedded pipeline: tests/unit/test_reconcile_*.py)."""

from __future__ import annotations

from aiprod.handlers import HANDLERS
from aiprod.services.reconcile import ReconcileReport

TEXT = {"job_id": "t1", "prompt": "a paper boat in the rain"}
LEASE = 60.0


def only(**counts: int) -> dict[str, int]:
    """A sweep's report: these counts, every other action zero."""
    return {**ReconcileReport().to_json(), **counts}


def drop(p, topic: str) -> list[bytes]:
    """From now on, messages on ``topic`` are lost (kept here for the test to look at)."""
    lost: list[bytes] = []
    p.bus.subscribe(topic, lambda data, attributes: lost.append(data))
    return lost


def deliver(p, topic: str, function: str) -> None:
    """Deliver ``topic`` to its function again."""
    p.bus.subscribe(topic, HANDLERS[function](p.app))


def sweep(p) -> dict[str, int]:
    """One reconciler run, then everything it set in motion."""
    report = p.app.reconciler.run()
    p.drain()
    return report.to_json()


def slow_runway(latency_s: float, **settings):
    """Runway takes ``latency_s``; the render function gives up waiting after 10 s."""
    return {
        "lease_s": LEASE,
        "render_deadline_s": 10,
        "poll_interval_s": 5,
        "simulation": {"runway": {"latency_s": latency_s}},
        **settings,
    }
