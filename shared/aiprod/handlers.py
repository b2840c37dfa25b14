"""Which service method serves each function of the topology, as two tables keyed by
function name: the embedded bus and the test harnesses deliver through them, and
tests/unit/test_scheduled_functions.py checks every function of the topology has an entry.

Kept apart from ``bootstrap`` (which builds the services) so that adding a function never
grows the wiring module; each entry is a lambda, so nothing is built until it is called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from aiprod import topology

if TYPE_CHECKING:
    from aiprod.bootstrap import App

Handler = Callable[[bytes, dict[str, str]], None]

# Pub/Sub triggered functions: (data, attributes) of one message, acked when it returns.
HANDLERS: dict[str, Callable[[App], Handler]] = {
    "route_job": lambda app: app.router.handle,
    "handle_outcome": lambda app: app.outcomes.handle,
    "control_job": lambda app: app.job_control.handle,
    **{f"render_{b}": (lambda app, b=b: app.renderer(b).handle) for b in topology.BACKENDS},
}
# HTTP functions that Cloud Scheduler calls: one run, its result the HTTP answer.
SCHEDULED: dict[str, Callable[[App], Callable[[], object]]] = {
    "reconcile": lambda app: app.reconciler.run,
}
