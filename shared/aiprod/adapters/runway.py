"""Runway through the ``runwayml`` SDK: the only module that imports it.

A task is created with the SDK's retries off: Runway takes no idempotency key, so a retried
POST could start a second paid task. After a create whose answer is lost (timeout, dropped
connection, unreadable body) the outcome is UNKNOWN: nothing is sent again. Polls are cheap
and safe to repeat, so a poll that fails transiently is just "not done yet".
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import runwayml

from aiprod.adapters.provider_common import (
    MICROS_PER_RUNWAY_CREDIT,
    catalog_cost,
    check_request,
    error,
    failed,
    misconfigured,
    refuse_unless,
    retry_after,
)
from aiprod.config import RUNWAY_KEY_ENV, ProviderSettings, secret
from aiprod.domain import taxonomy
from aiprod.domain.catalog import Catalog, ModelSpec
from aiprod.domain.messages import RenderTask
from aiprod.exceptions import ConfigError
from aiprod.ports import ProviderResult, VideoBackend

log = logging.getLogger(__name__)
RUNNING = frozenset({"PENDING", "THROTTLED", "RUNNING"})
MAX_PROMPT_UTF16 = 1000


class RunwayBackend(VideoBackend):
    name = "runway"

    def __init__(self, settings: ProviderSettings, catalog: Catalog, client: Any = None):
        self._settings, self._catalog, self._client = settings, catalog, client

    def submit(self, task: RenderTask) -> str:
        spec = self._catalog.model(self.name, task.model)
        check_request(task, spec, self.name)
        body = _create_body(task, spec)
        try:
            create = self.client().with_options(max_retries=0)  # no blind second task
            kind = task.request.input_kind
            endpoint = create.image_to_video if kind == "image" else create.text_to_video
            created = endpoint.create(**body)
        except ConfigError as exc:
            raise misconfigured(exc) from exc
        except runwayml.APIStatusError as exc:
            verdict, wait = taxonomy.http_status(exc.status_code), retry_after(exc.response)
            raise error(verdict, _reason(exc), retry_after_s=wait) from exc
        except runwayml.APIConnectionError as exc:
            raise error(_lost(exc), f"runway create: {type(exc).__name__}") from exc
        except ValueError as exc:  # a 2xx whose body is not JSON: a task may exist
            raise error(taxonomy.MALFORMED, "runway create answered unreadable JSON") from exc
        task_id = getattr(created, "id", None)
        if not isinstance(task_id, str) or not task_id:
            raise error(taxonomy.MALFORMED, "runway create answered no task id")
        return task_id

    def poll(self, provider_task_id: str, task: RenderTask) -> ProviderResult:
        try:
            found = self.client().tasks.retrieve(provider_task_id)
            data = found.to_dict() if hasattr(found, "to_dict") else None
        except ConfigError as exc:
            raise misconfigured(exc, submitted=True) from exc
        except runwayml.NotFoundError as exc:
            return failed(taxonomy.BAD_REQUEST, f"runway task not found: {_reason(exc)}")
        except (runwayml.APIError, ValueError) as exc:  # 429/5xx/timeouts/garbled: look again
            log.warning("runway poll not answered (%s); will look again", type(exc).__name__)
            return ProviderResult(done=False)
        if not isinstance(data, dict) or data.get("status") in RUNNING:
            return ProviderResult(done=False)
        return self._finished(data, task)

    def client(self) -> Any:
        """The SDK client, built at first use (the key is checked then, never logged)."""
        if self._client is None:
            self._client = runwayml.RunwayML(
                api_key=secret(RUNWAY_KEY_ENV),
                base_url=self._settings.runway_base_url,
                timeout=self._settings.timeout_s,
            )
        return self._client

    def _finished(self, data: dict, task: RenderTask) -> ProviderResult:
        status, cost = data.get("status"), _reported_cost(data)
        if status == "SUCCEEDED":
            outputs = data.get("output") or []
            if not outputs:
                return failed(
                    taxonomy.PROVIDER_FAILED, "runway succeeded with no output", cost or 0
                )
            if cost is None:
                cost = catalog_cost(task, self._catalog.model(self.name, task.model))
                log.warning("runway reported no cost; charged the catalog price")
            return ProviderResult(done=True, output_uri=str(outputs[0]), cost_micros=cost)
        if status == "FAILED":
            code = data.get("failureCode")
            verdict = taxonomy.runway_failure(code, self._settings.content_policy)
            return failed(verdict, f"{data.get('failure', 'failed')} ({code})", cost or 0)
        if status == "CANCELLED":
            return failed(taxonomy.CANCELLED, "runway task was cancelled", cost or 0)
        log.warning("runway task status %r is not known; will look again", status)
        return ProviderResult(done=False)


def _create_body(task: RenderTask, spec: ModelSpec) -> dict[str, Any]:
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


def _reported_cost(data: dict) -> int | None:
    credits = (data.get("cost") or {}).get("credits")
    return None if credits is None else round(float(credits) * MICROS_PER_RUNWAY_CREDIT)


def _reason(exc: runwayml.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    return f"runway HTTP {exc.status_code}: {body.get('error') or exc.message}"


def _lost(exc: runwayml.APIConnectionError) -> taxonomy.Verdict:
    """Refused before sending → safe to retry; anything later may have created a task."""
    if isinstance(exc.__cause__, httpx.ConnectError):
        return taxonomy.UNREACHABLE
    return taxonomy.SUBMIT_UNCONFIRMED
