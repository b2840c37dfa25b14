"""Cloud Run's concurrency limit for a local function process: a WSGI gate.

A deployed function serves at most ``concurrency`` requests per instance; with every
instance busy at ``max_instances``, Cloud Run answers 429 at once and Pub/Sub counts the push
as a delivery attempt. Under plain functions-framework, gunicorn would instead queue the
extra request until a thread frees up, so a test could never see the refusal. The gate takes
a semaphore without blocking: past ``concurrency`` requests in flight it answers 429 (logged
as one JSON line, ``event`` ``push_refused``), and ``GET /_stack/gate`` answers its counters
(``served``, ``refused``, ``in_flight``, ``max_in_flight``) without counting itself.

A request counts until the app returns: a function's answer is small and complete by then
(Flask builds it), and a pusher sends its next request only after reading the answer, so
releasing before gunicorn writes it keeps a request from overlapping its own successor.
The process serving it (``stack.serve``) runs more gunicorn threads than the gate admits, so
the gate, not gunicorn's backlog, is what answers the request past the limit. The counters
live in the gunicorn worker: a worker killed and restarted starts them from zero, as a new
Cloud Run instance would.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

STATS_PATH = "/_stack/gate"
REFUSED_MESSAGE = "stack gate: refused with 429"
_JSON = [("Content-Type", "application/json")]

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict, StartResponse], Iterable[bytes]]


class ConcurrencyGate:
    """Wraps a WSGI app: at most ``concurrency`` requests in it at once, the rest get 429."""

    def __init__(self, app: WsgiApp, concurrency: int, name: str = "", log=sys.stdout):
        if concurrency < 1:
            raise ValueError("a gate admits at least one request at a time")
        self.app, self.concurrency, self.name = app, concurrency, name
        self._slots = threading.BoundedSemaphore(concurrency)
        self._lock = threading.Lock()
        self._log = log
        self.served = self.refused = self.in_flight = self.max_in_flight = 0

    def __call__(self, environ: dict, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == STATS_PATH and environ.get("REQUEST_METHOD") == "GET":
            start_response("200 OK", _JSON)
            return [json.dumps(self.stats()).encode()]
        if not self._slots.acquire(blocking=False):
            return self._refuse(start_response)
        self._enter()
        try:
            return self.app(environ, start_response)
        finally:
            self._leave()

    def stats(self) -> dict[str, int]:
        with self._lock:
            return {
                "concurrency": self.concurrency,
                "served": self.served,
                "refused": self.refused,
                "in_flight": self.in_flight,
                "max_in_flight": self.max_in_flight,
            }

    def _enter(self) -> None:
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)

    def _leave(self) -> None:
        with self._lock:
            self.in_flight -= 1
            self.served += 1
        self._slots.release()

    def _refuse(self, start_response: StartResponse) -> list[bytes]:
        with self._lock:
            self.refused += 1
            refused = self.refused
        line = {
            "severity": "WARNING",
            "message": f"{REFUSED_MESSAGE}: {self.concurrency} requests in flight",
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "logger": __name__,
            "event": "push_refused",
            "function": self.name,
            "refused": refused,
        }
        print(json.dumps(line), file=self._log, flush=True)
        start_response("429 Too Many Requests", [*_JSON, ("Retry-After", "1")])
        return [b'{"error": "rate limited: the function is at its concurrency"}']
