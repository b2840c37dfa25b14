"""A simulated provider for the embedded run, the emulator stack and the tests.

Stateless by design: the decision for a render (its outcome and when it is ready) is encoded
in the provider task id, so a poll from another process, or after a crash, sees the same
task. Behaviour per backend comes from ``AIPROD_SIMULATION`` (JSON), for example
``{"runway": {"down": true}, "veo": {"latency_s": 0.2, "failure_rate": 0.1}}``:

- ``latency_s``: time from submit until the task is done (default 0)
- ``failure_rate``: share of renders that fail, chosen deterministically per job and attempt
- ``error_class`` / ``error_code``: how those failures are classified (an ``ErrorClass`` and
  an ``ErrorCode``; by default FALLBACK, and ``unavailable`` for a refused submit or
  ``render_failed`` for a failed render); anything else is a ``ConfigError``
- ``down``: every submit fails; ``outage_after`` / ``outage_count``: submits number
  after+1 … after+count fail (a scripted outage part-way through a batch)
- ``cost_ratio``: the reported cost as a share of the worst-case hold (default 1.0)

A cancel (``cancel``) stops a task not yet done: its polls are then done, FALLBACK
``cancelled``, costing the share of its price (the hold times ``cost_ratio``) its latency
had run when it was cancelled, rounded down: like a provider billing the time used, never
negative and never above the price. A task already done (or never issued) is left as it is.
Cancels are the one thing remembered rather than encoded in the task id (an id cannot
change), so only this instance sees them: the embedded run and the tests, where one
instance submits, cancels and polls. A running task another instance started (on the
emulator stack, another function's process) is out of reach: its cancel answers False, as
a provider with no cancel call would, so the attempt is closed at once and the task charged
when it ends.

It implements the ``VideoBackend`` port directly (there is no SDK, so nothing of
``provider_base.LiveBackend`` applies) and answers like the live adapters: a refused submit
raises ``ProviderError``, and a task id it never issued is done, FALLBACK ``bad_request``.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Mapping
from typing import TypeVar

from aiprod.adapters.provider_common import NOT_DONE, error, failed, rendered
from aiprod.domain import taxonomy
from aiprod.domain.catalog import Catalog
from aiprod.domain.error_codes import ErrorCode
from aiprod.domain.messages import ErrorClass, RenderTask
from aiprod.domain.spend_audit import ProviderDay, ProviderTask
from aiprod.exceptions import ConfigError
from aiprod.ports import ProviderResult, SpendSource, VideoBackend

log = logging.getLogger(__name__)
E = TypeVar("E", ErrorClass, ErrorCode)


class SimulatedBackend(VideoBackend):
    can_cancel = True

    def __init__(
        self,
        name: str,
        catalog: Catalog,
        script: Mapping[str, object] | None,
        clock: Callable[[], float],
    ):
        self.name = name
        self._catalog = catalog
        self._script = dict(script or {})
        self._clock = clock
        error_class = _member(ErrorClass, self._script.get("error_class", ErrorClass.FALLBACK))
        code = self._script.get("error_code")
        self._refusal = (error_class, _member(ErrorCode, code or ErrorCode.UNAVAILABLE))
        self._failure = (error_class, _member(ErrorCode, code or ErrorCode.RENDER_FAILED))
        self._submits = 0
        self._lock = threading.Lock()
        self.submitted: list[str] = []  # task ids, in order (tests count renders with it)
        self.cancelled: list[str] = []  # task ids, every cancel asked (repeats too)
        self._stopped: dict[str, int] = {}  # task id → its cost, stopped before done

    def submit(self, task: RenderTask, before_send: Callable[[], None] | None = None) -> str:
        if before_send is not None:
            before_send()
        with self._lock:
            self._submits += 1
            number = self._submits
        if self._is_down(number):
            raise error(self._refusal, f"{self.name} (simulated) is unavailable")
        fails = _share(task.job_id, task.attempt) < float(self._script.get("failure_rate", 0.0))
        ready_at = self._clock() + float(self._script.get("latency_s", 0.0))
        task_id = f"sim~{task.job_id}~{task.attempt}~{'F' if fails else 'S'}~{ready_at:.3f}"
        with self._lock:
            self.submitted.append(task_id)
        context = {"job_id": task.job_id, "attempt": task.attempt, "backend": self.name}
        log.info("simulated render started", extra=context)
        return task_id

    def poll(self, provider_task_id: str, task: RenderTask) -> ProviderResult:
        decoded = _decode(provider_task_id)
        if decoded is None:
            message = f"{self.name} (simulated) task not found: {provider_task_id}"
            return failed(taxonomy.BAD_REQUEST, message)
        verdict, ready_at = decoded
        with self._lock:
            stopped = self._stopped.get(provider_task_id)
        if stopped is not None:
            return failed(
                taxonomy.CANCELLED, f"{self.name} (simulated) task was cancelled", stopped
            )
        if self._clock() < ready_at:
            return NOT_DONE
        if verdict == "F":
            return failed(self._failure, f"{self.name} (simulated) failed the render")
        cost = self._price(task)
        return rendered(f"sim://{self.name}/{task.job_id}/attempt-{task.attempt}.mp4", cost)

    def cancel(self, provider_task_id: str, task: RenderTask) -> bool:
        """Stop a task not yet done, charged the share of its latency that had run."""
        with self._lock:
            self.cancelled.append(provider_task_id)
        decoded = _decode(provider_task_id)
        now = self._clock()
        if decoded is None or now >= decoded[1]:
            return True  # never issued, or done: its polls answer as before
        with self._lock:
            ours = provider_task_id in self.submitted
        if not ours:  # started by another process (the emulator stack): out of our reach
            return False
        latency_ms = round(float(self._script.get("latency_s", 0.0)) * 1000)
        left_ms = round((decoded[1] - now) * 1000)
        ran_ms = min(latency_ms, max(0, latency_ms - left_ms))
        cost = self._price(task) * ran_ms // latency_ms if latency_ms > 0 else 0
        with self._lock:
            self._stopped.setdefault(provider_task_id, cost)
        return True

    def _price(self, task: RenderTask) -> int:
        """What a finished render reports: the hold (worst case) times ``cost_ratio``."""
        hold = self._catalog.model(task.backend, task.model).price_for(
            task.request.resolution, task.request.duration_s
        )
        return int((hold or 0) * float(self._script.get("cost_ratio", 1.0)))

    def _is_down(self, number: int) -> bool:
        if self._script.get("down"):
            return True
        after = self._script.get("outage_after")
        if after is None:
            return False
        count = int(self._script.get("outage_count", 10**9))
        return int(after) < number <= int(after) + count


def _decode(task_id: str) -> tuple[str, float] | None:
    """A task id this provider issued (``sim~job~attempt~S|F~ready_at``), or None."""
    parts = task_id.split("~")
    if len(parts) != 5 or parts[0] != "sim" or parts[3] not in ("S", "F"):
        return None
    try:
        return parts[3], float(parts[4])
    except ValueError:
        return None


def _member(enum: type[E], value: object) -> E:
    """A scripted class or code, checked against its closed set."""
    try:
        return enum(value)
    except ValueError:
        known = ", ".join(enum)
        raise ConfigError(f"AIPROD_SIMULATION: {value!r} is not one of {known}") from None


def _share(job_id: str, attempt: int) -> float:
    """A stable number in [0, 1) per job and attempt, so failures repeat across processes."""
    digest = hashlib.sha256(f"{job_id}#{attempt}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


class SimulatedSpend(SpendSource):
    """The spend audit's view of a simulated provider, which bills nothing: the renders a
    test or a demo puts in ``tasks`` (an orphan to find), and no total."""

    def __init__(self, provider: str, tasks: list[ProviderTask] | None = None):
        self.provider = provider
        self.tasks: list[ProviderTask] = list(tasks or [])

    def day(self, day: str, start: float, end: float, stored: list[str]) -> ProviderDay:
        return ProviderDay(self.provider, day, tuple(self.tasks))
