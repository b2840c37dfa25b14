"""Veo on Vertex AI through ``google-genai`` (``vertexai=True``, API ``v1``): the only module
that imports it.

``generate_videos`` is Vertex's ``predictLongRunning`` and ``operations.get`` its
``fetchPredictOperation``; ``google-cloud-aiplatform`` exposes neither (and costs over a second
of cold start), so it is not used. Veo writes the video straight into the project's bucket
(``output_gcs_uri``): nothing to copy, and no URL that expires. Credentials are the
environment's (Application Default Credentials); the SDK sends no retries unless asked.

No cancel (``can_cancel`` False): Vertex AI operations take ``POST {name}:cancel``, but
google-genai (3.6.1 here, and its main branch: ``operations.py`` has only ``get``) has no
public call for it, and this adapter does not reach into the SDK's private client. A Veo
render asked to stop therefore runs to its end and is charged as it finishes (a video
written into the bucket is billed per output second).
"""

from __future__ import annotations

import mimetypes
from typing import Any

import httpx2  # google-genai 3.x sends through httpx2 (a fork of httpx), not httpx
from google.auth import exceptions as auth_errors
from google.genai import errors, types

from aiprod.adapters.image_fetch import ImageFetcher
from aiprod.adapters.provider_base import LiveBackend
from aiprod.adapters.provider_common import (
    NOT_DONE,
    catalog_cost,
    failed,
    refuse_unless,
    rendered,
    short,
)
from aiprod.adapters.vertex_client import vertex_client
from aiprod.domain import taxonomy
from aiprod.domain.catalog import ModelSpec
from aiprod.domain.messages import RenderTask
from aiprod.exceptions import ConfigError
from aiprod.ports import ProviderResult


class VeoBackend(LiveBackend):
    name = "veo"
    task_kind, task_id_kind = "operation", "operation name"
    can_cancel = False  # no public cancel in google-genai (module docstring)
    unanswered = (
        ((httpx2.ConnectError, auth_errors.TransportError), taxonomy.UNREACHABLE),  # not sent
        (httpx2.HTTPError, taxonomy.SUBMIT_UNCONFIRMED),  # sent, answer lost: it may exist
    )
    poll_retried = (errors.APIError, httpx2.HTTPError, auth_errors.GoogleAuthError)
    # fetches an https input image itself (pinned, bounded); tests give one that may reach
    # their own local server
    image_fetcher = ImageFetcher()

    def _prepare(self, task: RenderTask, spec: ModelSpec) -> dict[str, Any]:
        request = task.request
        refuse_unless(request.aspect_ratio in spec.aspect_ratios, "veo renders 16:9 or 9:16")
        source = types.GenerateVideosSource(
            prompt=request.prompt,
            image=_image(task, self._settings.timeout_s, self.image_fetcher),
        )
        config = types.GenerateVideosConfig(
            number_of_videos=1,
            duration_seconds=request.duration_s,
            aspect_ratio=request.aspect_ratio,
            resolution=request.resolution,
            generate_audio=spec.generate_audio,
        )
        return {"model": task.model, "source": source, "config": config}

    def _create(self, request: dict[str, Any], task: RenderTask) -> str | None:
        request["config"].output_gcs_uri = f"gs://{self._settings.bucket()}/{output_prefix(task)}"
        try:
            return self.client().models.generate_videos(**request).name
        except (auth_errors.DefaultCredentialsError, auth_errors.RefreshError) as exc:
            raise ConfigError(f"veo credentials: {type(exc).__name__}") from exc

    def _fetch(self, provider_task_id: str) -> Any:
        operation = types.GenerateVideosOperation(name=provider_task_id)
        return self.client().operations.get(operation)

    def _read(self, raw: Any, task: RenderTask) -> ProviderResult:
        return self._finished(raw, task) if raw.done else NOT_DONE

    def _status(self, exc: BaseException) -> int | None:
        return exc.code if isinstance(exc, errors.APIError) else None

    def _reason(self, exc: Any) -> str:
        return short(f"veo HTTP {exc.code} {exc.status or ''}: {exc.message or ''}")

    def _verdict(self, status: int, exc: Exception) -> taxonomy.Verdict:
        message = str(getattr(exc, "message", "")).lower()
        if status == 400 and any(marker in message for marker in taxonomy.VEO_SAFETY_MARKERS):
            return taxonomy.content_policy(self._settings.content_policy)
        return super()._verdict(status, exc)

    def _connect(self) -> Any:
        return vertex_client(self._settings, self._project)

    def _finished(self, operation: Any, task: RenderTask) -> ProviderResult:
        policy = self._settings.content_policy
        if operation.error:
            code, message = operation.error.get("code"), str(operation.error.get("message", ""))
            return failed(taxonomy.veo_operation_error(code, message, policy), message)
        result = operation.result or operation.response
        videos = (result.generated_videos if result else None) or []
        uri = videos[0].video.uri if videos and videos[0].video else None
        if uri and uri.startswith("gs://"):
            return rendered(uri, catalog_cost(task, self.spec(task)))
        if result and result.rai_media_filtered_count:
            reasons = "; ".join(result.rai_media_filtered_reasons or ["filtered"])
            return failed(taxonomy.content_policy(policy), f"veo filtered the video: {reasons}")
        return failed(taxonomy.PROVIDER_FAILED, "veo finished with no video in the bucket")


def output_prefix(task: RenderTask) -> str:
    """Where Veo writes an attempt's video: one folder per job and attempt."""
    return f"videos/{task.job_id}/attempt-{task.attempt}/"


def _image(task: RenderTask, deadline_s: float, fetcher: ImageFetcher) -> types.Image | None:
    """A bucket image by reference; another is fetched and sent inline (bounded)."""
    uri = task.request.image_uri
    if not uri:
        return None
    if uri.startswith("gs://"):
        return types.Image(gcs_uri=uri, mime_type=mimetypes.guess_type(uri)[0] or "image/png")
    data, mime = fetcher.fetch(uri, deadline_s)
    return types.Image(image_bytes=data, mime_type=mime)
