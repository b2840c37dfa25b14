"""Runway through the ``runwayml`` SDK: the only module that imports it.

A task is created with the SDK's retries off: Runway takes no idempotency key, so a retried
POST could start a second paid task. After a create whose answer is lost (timeout, dropped
connection, unreadable body) the outcome is UNKNOWN: nothing is sent again. Polls are cheap
and safe to repeat, so a poll that fails transiently is just "not done yet".

A cancel is ``DELETE /v1/tasks/{id}`` (``tasks.delete``, 204), which cancels a PENDING,
THROTTLED or RUNNING task but *deletes* any other (runwayml 5.24, ``resources/tasks.py``;
docs.dev.runwayml.com/api "Cancel or delete a task"). So ``_cancel`` looks first and sends
it only to a task still running: a finished task keeps its result and its cost.
"""

from __future__ import annotations

import logging
from datetime import date, timedelta
from typing import Any

import httpx
import runwayml

from aiprod.adapters.provider_base import LiveBackend
from aiprod.adapters.provider_common import (
    MICROS_PER_RUNWAY_CREDIT,
    NOT_DONE,
    QUEUED,
    catalog_cost,
    failed,
    refuse_unless,
    rendered,
)
from aiprod.config import RUNWAY_KEY_ENV, secret
from aiprod.domain import taxonomy
from aiprod.domain.catalog import ModelSpec
from aiprod.domain.messages import RenderTask
from aiprod.domain.spend_audit import ProviderDay, ProviderTask
from aiprod.ports import ProviderResult, SpendSource

log = logging.getLogger(__name__)
RUNNING = frozenset({"PENDING", "THROTTLED", "RUNNING"})
# Accepted but not rendering yet: THROTTLED is Runway's queue past our tier's concurrency.
WAITING = frozenset({"PENDING", "THROTTLED"})
MAX_PROMPT_UTF16 = 1000


class RunwayBackend(LiveBackend):
    name = "runway"
    can_cancel = True
    poll_retried = (runwayml.APIError,)  # 429/5xx/timeouts: look again

    def _prepare(self, task: RenderTask, spec: ModelSpec) -> dict[str, Any]:
        request = task.request
        ratio = spec.ratios.get(request.input_kind, {}).get(request.aspect_ratio)
        refuse_unless(ratio is not None, f"runway {task.model} has no {request.aspect_ratio} ratio")
        units = len(request.prompt.encode("utf-16-le")) // 2
        refuse_unless(units <= MAX_PROMPT_UTF16, f"runway prompts are at most {MAX_PROMPT_UTF16}")
        body: dict[str, Any] = {
            "model": task.model,
            "prompt_text": request.prompt,
            "ratio": ratio,
            "duration": request.duration_s,
        }
        if request.input_kind == "image":
            image = request.image_uri or ""
            refuse_unless(image.startswith("https://"), "runway fetches images over https only")
            body["prompt_image"] = image
        return body

    def _create(self, request: dict[str, Any], task: RenderTask) -> str | None:
        create = self.client().with_options(max_retries=0)  # no blind second task
        kind = task.request.input_kind
        endpoint = create.image_to_video if kind == "image" else create.text_to_video
        return getattr(endpoint.create(**request), "id", None)

    def _fetch(self, provider_task_id: str) -> dict | None:
        found = self.client().tasks.retrieve(provider_task_id)
        return found.to_dict() if hasattr(found, "to_dict") else None

    def _read(self, raw: dict | None, task: RenderTask) -> ProviderResult:
        if isinstance(raw, dict) and raw.get("status") in WAITING:
            return QUEUED
        if not isinstance(raw, dict) or raw.get("status") in RUNNING:
            return NOT_DONE
        return self._finished(raw, task)

    def _cancel(self, provider_task_id: str) -> None:
        """Cancel a task still running; leave any other alone (a DELETE would erase a
        finished task's result, and a second one is refused). A task that finishes between
        the look and the DELETE is deleted: it then reads CANCELLED with its charged cost
        (Runway: "Deleting a completed task does not refund its charge")."""
        found = self._fetch(provider_task_id)
        if isinstance(found, dict) and found.get("status") in RUNNING:
            self.client().with_options(max_retries=0).tasks.delete(provider_task_id)

    def _status(self, exc: BaseException) -> int | None:
        return exc.status_code if isinstance(exc, runwayml.APIStatusError) else None

    def _reason(self, exc: Any) -> str:
        body = exc.body if isinstance(exc.body, dict) else {}
        return f"runway HTTP {exc.status_code}: {body.get('error') or exc.message}"

    def _unanswered(self, exc: Exception) -> taxonomy.Verdict | None:
        """The SDK wraps the transport's error: refused before sending → safe to retry;
        anything later may have created a task."""
        if not isinstance(exc, runwayml.APIConnectionError):
            return None
        if isinstance(exc.__cause__, httpx.ConnectError):
            return taxonomy.UNREACHABLE
        return taxonomy.SUBMIT_UNCONFIRMED

    def _connect(self) -> Any:
        return runwayml.RunwayML(
            api_key=secret(RUNWAY_KEY_ENV),
            base_url=self._settings.runway_base_url,
            timeout=self._settings.timeout_s,
        )

    def _finished(self, data: dict, task: RenderTask) -> ProviderResult:
        status, cost = data.get("status"), _reported_cost(data)
        if status == "SUCCEEDED":
            outputs = data.get("output") or []
            if not outputs:
                return failed(
                    taxonomy.PROVIDER_FAILED, "runway succeeded with no output", cost or 0
                )
            if cost is None:
                cost = catalog_cost(task, self.spec(task))
                log.warning("runway reported no cost; charged the catalog price")
            return rendered(str(outputs[0]), cost)
        if status == "FAILED":
            code = data.get("failureCode")
            verdict = taxonomy.runway_failure(code, self._settings.content_policy)
            return failed(verdict, f"{data.get('failure', 'failed')} ({code})", cost or 0)
        if status == "CANCELLED":
            return failed(
                taxonomy.CANCELLED,
                "runway task was cancelled",
                _cancelled_cost(data, task, self.spec(task)),
            )
        log.warning("runway task status %r is not known; will look again", status)
        return NOT_DONE


def _cancelled_cost(data: dict, task: RenderTask, spec: ModelSpec) -> int:
    """What a cancelled task costs: its final ``cost.credits`` (0 when Runway refunded it).
    Runway refunds a cancel only if it found the task not yet RUNNING, and decides on its
    side (runwayml 5.24 ``tasks.delete``; ``TaskRetrieveResponse.Cancelled.cost``: "Fully
    refunded tasks report 0"). A CANCELLED task without a cost is therefore charged the
    catalog price: the conservative reading, which never drops a possible charge."""
    cost = _reported_cost(data)
    if cost is None:
        log.warning("runway reported no cost for a cancelled task; charged the catalog price")
        return catalog_cost(task, spec)
    return cost


def _reported_cost(data: dict) -> int | None:
    credits = (data.get("cost") or {}).get("credits")
    return None if credits is None else round(float(credits) * MICROS_PER_RUNWAY_CREDIT)


class RunwaySpend(RunwayBackend, SpendSource):
    """The spend audit's view of Runway, which lists no tasks: the organization's credits
    for the day (``POST /v1/organization/usage`` with ``startDate`` / ``beforeDate``, UTC
    days; ``results[].usedCredits[]`` per model), and each stored task id we were given
    (``GET /v1/tasks/{id}``: its status and ``cost.credits``)."""

    provider = "runway"

    def day(self, day: str, start: float, end: float, stored: list[str]) -> ProviderDay:
        after = (date.fromisoformat(day) + timedelta(days=1)).isoformat()
        usage = self.client().organization.retrieve_usage(start_date=day, before_date=after)
        credits = sum(
            used.amount
            for result in usage.results
            if str(result.date) == day
            for used in result.used_credits
        )
        tasks = tuple(t for t in map(self._task, dict.fromkeys(stored)) if t is not None)
        return ProviderDay(self.provider, day, tasks, credits * MICROS_PER_RUNWAY_CREDIT)

    def _task(self, task_id: str) -> ProviderTask | None:
        try:
            data = self.client().tasks.retrieve(task_id).to_dict()
        except runwayml.NotFoundError:
            return None  # never created: nothing billed
        status, cost = data.get("status"), _reported_cost(data)
        billed = None if status in RUNNING else bool(cost) or status == "SUCCEEDED"
        return ProviderTask(task_id, task_id, "", str(status), billed, cost)
