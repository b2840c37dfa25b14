"""Replicate through the ``replicate`` SDK: the only module that imports it.

A prediction is created on the model's endpoint (``POST /v1/models/{owner}/{name}/predictions``;
the SDK never retries a POST, and ``Prefer: wait`` bounds it, see ``_wait_s``) and polled with
``GET /v1/predictions/{id}``. The poll reads the JSON itself, through the client's own request
method (auth, base URL, retry transport): SDK 1.0.7's ``Prediction`` model refuses the
documented ``aborted`` status with a validation error (the fix, replicate-python PR #449, is
unreleased), which would otherwise hide a finished prediction.

A cancel is ``POST /v1/predictions/{id}/cancel``, sent the same way (SDK 1.0.7's
``predictions.cancel`` parses the answer into that same model). Replicate stops a running
prediction: its polls then read ``canceled``, with ``metrics.predict_time`` for the time it
ran. What it answers for a finished one is not documented (client libraries disagree: the
prediction unchanged, or an error), so ``_cancel`` sends it only to a prediction a look shows
still ``starting`` or ``processing``. A canceled prediction is priced like any other end
(``_finished``): a model billed by compute time is charged the time it ran, a model priced
per output video nothing (it made none).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import replicate
from replicate.exceptions import ReplicateError

from aiprod.adapters.provider_base import LiveBackend
from aiprod.adapters.provider_common import (
    NOT_DONE,
    QUEUED,
    catalog_cost,
    failed,
    refuse_unless,
    rendered,
)
from aiprod.config import REPLICATE_KEY_ENV, secret
from aiprod.domain import taxonomy
from aiprod.domain.catalog import ModelSpec
from aiprod.domain.messages import RenderTask
from aiprod.domain.spend_audit import ProviderDay, ProviderTask
from aiprod.ports import ProviderResult, SpendSource

log = logging.getLogger(__name__)
RUNNING = frozenset({"starting", "processing"})
# Only these end a prediction; a status we do not know may still be rendering (and be
# billed), so it is looked at again rather than failed over to another backend.
FINISHED = frozenset({"succeeded", "failed", "canceled", "aborted"})
FIND_MARGIN_S = 120.0  # a lost create's prediction was made this close to when it was sent
FIND_PAGES = 5  # 100 predictions a page, newest first


class ReplicateBackend(LiveBackend):
    name = "replicate"
    task_kind, task_id_kind = "prediction", "prediction id"
    can_find = True  # GET /v1/predictions lists what our token created
    can_cancel = True
    unanswered = (
        (httpx.ConnectError, taxonomy.UNREACHABLE),  # connection refused: nothing sent
        (httpx.HTTPError, taxonomy.SUBMIT_UNCONFIRMED),  # sent, answer lost: it may exist
    )
    poll_retried = httpx.HTTPError

    def _prepare(self, task: RenderTask, spec: ModelSpec) -> dict[str, Any]:
        """The model's input: prompt, resolution, then the image or the aspect ratio, then
        the catalog's fixed fields (``num_frames`` for the Wan models)."""
        request = task.request
        refuse_unless(request.aspect_ratio in spec.aspect_ratios, f"replicate {task.model} ratio")
        body: dict[str, Any] = {"prompt": request.prompt, "resolution": request.resolution}
        if request.input_kind == "image":
            image = request.image_uri or ""
            refuse_unless(image.startswith("https://"), "replicate fetches images over https only")
            body["image"] = image
        else:
            body["aspect_ratio"] = request.aspect_ratio
        return {**body, **spec.params}

    def _create(self, request: dict[str, Any], task: RenderTask) -> str | None:
        # models.predictions, not predictions.create(model=...): that one drops ``wait``
        prediction = self.client().models.predictions.create(
            model=task.model, input=request, wait=_wait_s(self._settings.timeout_s)
        )
        prediction_id = getattr(prediction, "id", None)
        return str(prediction_id) if prediction_id else None

    def find(self, task: RenderTask, sent_at: float) -> str | None:
        """A prediction a lost create answer hid: our API predictions created around
        ``sent_at`` (``GET /v1/predictions``, newest first, cursor pages) on the same model
        with exactly this attempt's input. Exactly one match is adopted; none, or more than
        one (an identical request nearby), proves nothing: the attempt is charged its hold.
        Replicate keeps an API prediction's input about an hour, so look within it."""
        want = self._prepare(task, self.spec(task))
        after = datetime.fromtimestamp(sent_at - FIND_MARGIN_S, UTC).isoformat()
        path: str | None = f"/v1/predictions?{urlencode({'created_after': after})}"
        found: set[str] = set()
        for _ in range(FIND_PAGES):
            if path is None:
                break
            page = self.client()._request("GET", path).json()
            for item in page.get("results") or []:
                if _same_request(item, task.model, want):
                    found.add(str(item["id"]))
            following = page.get("next")  # a full URL: follow its path and query
            path = _path_of(following) if following else None
        if len(found) != 1:
            log.warning("replicate lookup of a lost create found %d predictions", len(found))
            return None
        return found.pop()

    def _fetch(self, provider_task_id: str) -> Any:
        return self.client()._request("GET", f"/v1/predictions/{provider_task_id}").json()

    def _read(self, raw: Any, task: RenderTask) -> ProviderResult:
        status = raw.get("status") if isinstance(raw, dict) else None
        if status in FINISHED:
            return self._finished(raw, status, task)
        if status == "starting":  # waiting for a worker (a cold boot or a queue): not rendering
            return QUEUED
        if status not in RUNNING:
            log.warning("replicate prediction in unknown status %r; will look again", status)
        return NOT_DONE

    def _cancel(self, provider_task_id: str) -> None:
        found = self._fetch(provider_task_id)
        if isinstance(found, dict) and found.get("status") in RUNNING:
            self.client()._request("POST", f"/v1/predictions/{provider_task_id}/cancel")

    def _status(self, exc: BaseException) -> int | None:
        return (exc.status or 500) if isinstance(exc, ReplicateError) else None

    def _reason(self, exc: Any) -> str:
        return f"replicate HTTP {exc.status}: {exc.title or ''} {exc.detail or ''}".strip()

    def _connect(self) -> Any:
        return replicate.Client(
            api_token=secret(REPLICATE_KEY_ENV),
            base_url=self._settings.replicate_base_url,
            timeout=httpx.Timeout(self._settings.timeout_s),
        )

    def _finished(self, data: dict, status: str, task: RenderTask) -> ProviderResult:
        spec = self.spec(task)
        output = data.get("output")
        uri = output[0] if isinstance(output, list) and output else output
        if status == "succeeded" and isinstance(uri, str) and uri:
            return rendered(uri, _cost(data, task, spec))
        if status == "succeeded":
            return failed(taxonomy.PROVIDER_FAILED, "replicate succeeded with no output URL")
        reason = str(data.get("error") or status)
        verdict = taxonomy.replicate_failure(status, reason, self._settings.content_policy)
        billed = _cost(data, task, spec) if spec.cost_basis == "predict_time" else 0
        return failed(verdict, f"replicate prediction {status}: {reason}", billed)


def _path_of(url: str) -> str:
    return urlsplit(url)._replace(scheme="", netloc="").geturl()


def _same_request(item: dict, model: str, want: dict) -> bool:
    """Our API prediction on this model with exactly this input (the list is asked only for
    predictions created since shortly before the create was sent)."""
    return (
        bool(item.get("id"))
        and item.get("model") == model
        and item.get("source", "api") == "api"
        and item.get("input") == want
    )


def _wait_s(timeout_s: float) -> int:
    """``Prefer: wait=N``, the only way to bound SDK 1.0.7's create: without ``wait`` it sends
    the POST with ``timeout=None`` (no timeout at all); with it, N + 0.5 s. Replicate holds
    the request at most N seconds and answers with the prediction, finished or not."""
    return min(60, max(1, round(timeout_s)))


def _cost(data: dict, task: RenderTask, spec: ModelSpec) -> int:
    """Per the catalog: output seconds at the model's price, or the compute time Replicate
    reports (``metrics.predict_time``) at the hardware's rate."""
    if spec.cost_basis == "predict_time":
        seconds = float((data.get("metrics") or {}).get("predict_time") or 0.0)
        return round(seconds * (spec.hardware_micros_per_s or 0))
    return catalog_cost(task, spec)


class ReplicateSpend(ReplicateBackend, SpendSource):
    """The spend audit's view of Replicate: the predictions created with our token in the
    window, from ``GET /v1/predictions`` (newest first, cursor pages: ``next`` is the next
    page's URL), read as JSON like ``_fetch`` (the SDK's model refuses ``aborted``)."""

    provider = "replicate"

    def day(self, day: str, start: float, end: float, stored: list[str]) -> ProviderDay:
        found: dict[str, ProviderTask] = {}
        page: str | None = "/v1/predictions"
        while page:
            listed = self.client()._request("GET", page).json()
            created = [(_epoch(p.get("created_at")), p) for p in listed.get("results") or []]
            found |= {p["id"]: self._task(p) for t, p in created if start <= t < end}
            older = [t for t, _ in created if t < start]
            page = None if older or not created else listed.get("next")
        return ProviderDay(self.provider, day, tuple(found.values()))

    def _task(self, data: dict) -> ProviderTask:
        """Billed: a success; a finished prediction on compute time (``predict_time``) too;
        a running one may yet be (None)."""
        status, model = str(data.get("status")), str(data.get("model") or "")
        spec = self._catalog.backends[self.name].models.get(model)
        on_time = spec is not None and spec.cost_basis == "predict_time"
        billed = None if status not in FINISHED else (status == "succeeded" or on_time)
        seconds = (data.get("metrics") or {}).get("predict_time")
        cost = None
        if on_time and status in FINISHED and seconds is not None:
            cost = round(float(seconds) * (spec.hardware_micros_per_s or 0))
        return ProviderTask(data["id"], data["id"], model, status, billed, cost)


def _epoch(text: object) -> float:
    """An RFC 3339 time (``2027-01-15T08:00:00.000000Z``) as epoch seconds (0 if unreadable)."""
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
