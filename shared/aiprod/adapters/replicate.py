"""Replicate through the ``replicate`` SDK: the only module that imports it.

A prediction is created on the model's endpoint (``POST /v1/models/{owner}/{name}/predictions``;
the SDK never retries a POST, and ``Prefer: wait`` bounds it, see ``_wait_s``) and polled with
``GET /v1/predictions/{id}``. The poll reads the JSON itself, through the client's own request
method (auth, base URL, retry transport): SDK 1.0.7's ``Prediction`` model refuses the
documented ``aborted`` status with a validation error (the fix, replicate-python PR #449, is
unreleased), which would otherwise hide a finished prediction.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import replicate
from replicate.exceptions import ReplicateError

from aiprod.adapters.provider_common import (
    catalog_cost,
    check_request,
    error,
    failed,
    misconfigured,
    refuse_unless,
)
from aiprod.config import REPLICATE_KEY_ENV, ProviderSettings, secret
from aiprod.domain import taxonomy
from aiprod.domain.catalog import Catalog, ModelSpec
from aiprod.domain.messages import RenderTask
from aiprod.exceptions import ConfigError
from aiprod.ports import ProviderResult, VideoBackend

log = logging.getLogger(__name__)
RUNNING = frozenset({"starting", "processing"})
# Only these end a prediction; a status we do not know may still be rendering (and be
# billed), so it is looked at again rather than failed over to another backend.
FINISHED = frozenset({"succeeded", "failed", "canceled", "aborted"})


class ReplicateBackend(VideoBackend):
    name = "replicate"

    def __init__(self, settings: ProviderSettings, catalog: Catalog, client: Any = None):
        self._settings, self._catalog, self._client = settings, catalog, client

    def submit(self, task: RenderTask) -> str:
        spec = self._catalog.model(self.name, task.model)
        check_request(task, spec, self.name)
        model_input = _input(task, spec)
        try:
            # models.predictions, not predictions.create(model=...): that one drops ``wait``
            prediction = self.client().models.predictions.create(
                model=task.model, input=model_input, wait=_wait_s(self._settings.timeout_s)
            )
        except ConfigError as exc:
            raise misconfigured(exc) from exc
        except ReplicateError as exc:
            status = exc.status or 500
            raise error(taxonomy.http_status(status), _reason(exc)) from exc
        except httpx.ConnectError as exc:
            raise error(taxonomy.UNREACHABLE, "replicate create: connection refused") from exc
        except httpx.HTTPError as exc:  # sent, answer lost: a prediction may exist
            raise error(
                taxonomy.SUBMIT_UNCONFIRMED, f"replicate create: {type(exc).__name__}"
            ) from exc
        except ValueError as exc:  # answered, but unreadable: a prediction may exist
            raise error(taxonomy.MALFORMED, "replicate create answered unreadable JSON") from exc
        if not getattr(prediction, "id", None):
            raise error(taxonomy.MALFORMED, "replicate create answered no prediction id")
        return str(prediction.id)

    def poll(self, provider_task_id: str, task: RenderTask) -> ProviderResult:
        try:
            response = self.client()._request("GET", f"/v1/predictions/{provider_task_id}")
            data = response.json()
        except ConfigError as exc:
            raise misconfigured(exc, submitted=True) from exc
        except ReplicateError as exc:
            if exc.status == 404:
                return failed(taxonomy.BAD_REQUEST, f"replicate prediction gone: {_reason(exc)}")
            log.warning("replicate poll answered HTTP %s; will look again", exc.status)
            return ProviderResult(done=False)
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("replicate poll not answered (%s); will look again", type(exc).__name__)
            return ProviderResult(done=False)
        status = data.get("status") if isinstance(data, dict) else None
        if status in FINISHED:
            return self._finished(data, status, task)
        if status not in RUNNING:
            log.warning("replicate prediction in unknown status %r; will look again", status)
        return ProviderResult(done=False)

    def client(self) -> Any:
        if self._client is None:
            self._client = replicate.Client(
                api_token=secret(REPLICATE_KEY_ENV),
                base_url=self._settings.replicate_base_url,
                timeout=httpx.Timeout(self._settings.timeout_s),
            )
        return self._client

    def _finished(self, data: dict, status: str, task: RenderTask) -> ProviderResult:
        spec = self._catalog.model(self.name, task.model)
        output = data.get("output")
        uri = output[0] if isinstance(output, list) and output else output
        if status == "succeeded" and isinstance(uri, str) and uri:
            return ProviderResult(done=True, output_uri=uri, cost_micros=_cost(data, task, spec))
        if status == "succeeded":
            return failed(taxonomy.PROVIDER_FAILED, "replicate succeeded with no output URL")
        reason = str(data.get("error") or status)
        verdict = taxonomy.replicate_failure(status, reason, self._settings.content_policy)
        billed = _cost(data, task, spec) if spec.cost_basis == "predict_time" else 0
        return failed(verdict, f"replicate prediction {status}: {reason}", billed)


def _wait_s(timeout_s: float) -> int:
    """``Prefer: wait=N``, the only way to bound SDK 1.0.7's create: without ``wait`` it sends
    the POST with ``timeout=None`` (no timeout at all); with it, N + 0.5 s. Replicate holds
    the request at most N seconds and answers with the prediction, finished or not."""
    return min(60, max(1, round(timeout_s)))


def _input(task: RenderTask, spec: ModelSpec) -> dict[str, Any]:
    """The model's input: prompt, resolution, then the image or the aspect ratio, then the
    catalog's fixed fields (``num_frames`` for the Wan models)."""
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


def _cost(data: dict, task: RenderTask, spec: ModelSpec) -> int:
    """Per the catalog: output seconds at the model's price, or the compute time Replicate
    reports (``metrics.predict_time``) at the hardware's rate."""
    if spec.cost_basis == "predict_time":
        seconds = float((data.get("metrics") or {}).get("predict_time") or 0.0)
        return round(seconds * (spec.hardware_micros_per_s or 0))
    return catalog_cost(task, spec)


def _reason(exc: ReplicateError) -> str:
    return f"replicate HTTP {exc.status}: {exc.title or ''} {exc.detail or ''}".strip()
