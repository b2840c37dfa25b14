"""Veo on Vertex AI through ``google-genai`` (``vertexai=True``, API ``v1``): the only module
that imports it.

``generate_videos`` is Vertex's ``predictLongRunning`` and ``operations.get`` its
``fetchPredictOperation``; ``google-cloud-aiplatform`` exposes neither (and costs over a second
of cold start), so it is not used. Veo writes the video straight into the project's bucket
(``output_gcs_uri``): nothing to copy, and no URL that expires. Credentials are the
environment's (Application Default Credentials); the SDK sends no retries unless asked.
"""

from __future__ import annotations

import logging
import mimetypes
from typing import Any

import httpx2  # google-genai 3.x sends through httpx2 (a fork of httpx), not httpx
from google import genai
from google.auth import exceptions as auth_errors
from google.genai import errors, types

from aiprod.adapters.provider_common import (
    catalog_cost,
    check_request,
    error,
    failed,
    fetch_image,
    misconfigured,
    refuse_unless,
    retry_after,
    short,
)
from aiprod.config import ProviderSettings
from aiprod.domain import taxonomy
from aiprod.domain.catalog import Catalog
from aiprod.domain.messages import RenderTask
from aiprod.exceptions import ConfigError
from aiprod.ports import ProviderResult, VideoBackend

log = logging.getLogger(__name__)


class VeoBackend(VideoBackend):
    name = "veo"

    def __init__(
        self, settings: ProviderSettings, catalog: Catalog, project: str, client: Any = None
    ):
        self._settings, self._catalog, self._project = settings, catalog, project
        self._client = client

    def submit(self, task: RenderTask) -> str:
        spec = self._catalog.model(self.name, task.model)
        check_request(task, spec, self.name)
        request = task.request
        refuse_unless(request.aspect_ratio in spec.aspect_ratios, "veo renders 16:9 or 9:16")
        source = types.GenerateVideosSource(prompt=request.prompt, image=_image(task))
        config = types.GenerateVideosConfig(
            number_of_videos=1,
            duration_seconds=request.duration_s,
            aspect_ratio=request.aspect_ratio,
            resolution=request.resolution,
            generate_audio=spec.generate_audio,
        )
        try:
            config.output_gcs_uri = f"gs://{self._settings.bucket()}/{output_prefix(task)}"
            operation = self.client().models.generate_videos(
                model=task.model, source=source, config=config
            )
        except ConfigError as exc:
            raise misconfigured(exc) from exc
        except (auth_errors.DefaultCredentialsError, auth_errors.RefreshError) as exc:
            raise misconfigured(ConfigError(f"veo credentials: {type(exc).__name__}")) from exc
        except errors.APIError as exc:
            verdict = _verdict(exc, self._settings.content_policy)
            wait = retry_after(getattr(exc, "response", None))
            raise error(verdict, _reason(exc), retry_after_s=wait) from exc
        except (httpx2.ConnectError, auth_errors.TransportError) as exc:  # nothing reached Veo
            raise error(taxonomy.UNREACHABLE, f"veo create: {type(exc).__name__}") from exc
        except httpx2.HTTPError as exc:  # sent, answer lost: an operation may exist
            raise error(taxonomy.SUBMIT_UNCONFIRMED, f"veo create: {type(exc).__name__}") from exc
        except ValueError as exc:  # answered, but unreadable: an operation may exist
            raise error(taxonomy.MALFORMED, "veo create answered unreadable JSON") from exc
        if not operation.name:
            raise error(taxonomy.MALFORMED, "veo create answered no operation name")
        return operation.name

    def poll(self, provider_task_id: str, task: RenderTask) -> ProviderResult:
        try:
            operation = self.client().operations.get(
                types.GenerateVideosOperation(name=provider_task_id)
            )
        except errors.APIError as exc:
            if exc.code == 404:
                return failed(taxonomy.BAD_REQUEST, f"veo operation not found: {_reason(exc)}")
            log.warning("veo poll answered HTTP %s; will look again", exc.code)
            return ProviderResult(done=False)
        except (httpx2.HTTPError, auth_errors.GoogleAuthError, ValueError) as exc:
            log.warning("veo poll not answered (%s); will look again", type(exc).__name__)
            return ProviderResult(done=False)
        if not operation.done:
            return ProviderResult(done=False)
        return self._finished(operation, task)

    def client(self) -> Any:
        if self._client is None:
            self._client = genai.Client(
                vertexai=True,
                project=self._settings.veo_project or self._project,
                location=self._settings.veo_location,
                http_options=types.HttpOptions(
                    api_version="v1",
                    base_url=self._settings.veo_base_url,
                    timeout=int(self._settings.timeout_s * 1000),
                ),
            )
        return self._client

    def _finished(self, operation: Any, task: RenderTask) -> ProviderResult:
        policy = self._settings.content_policy
        if operation.error:
            code, message = operation.error.get("code"), str(operation.error.get("message", ""))
            return failed(taxonomy.veo_operation_error(code, message, policy), message)
        result = operation.result or operation.response
        videos = (result.generated_videos if result else None) or []
        uri = videos[0].video.uri if videos and videos[0].video else None
        if uri and uri.startswith("gs://"):
            cost = catalog_cost(task, self._catalog.model(self.name, task.model))
            return ProviderResult(done=True, output_uri=uri, cost_micros=cost)
        if result and result.rai_media_filtered_count:
            reasons = "; ".join(result.rai_media_filtered_reasons or ["filtered"])
            return failed(taxonomy.content_policy(policy), f"veo filtered the video: {reasons}")
        return failed(taxonomy.PROVIDER_FAILED, "veo finished with no video in the bucket")


def output_prefix(task: RenderTask) -> str:
    """Where Veo writes an attempt's video: one folder per job and attempt."""
    return f"videos/{task.job_id}/attempt-{task.attempt}/"


def _image(task: RenderTask) -> types.Image | None:
    """A bucket image by reference; another is fetched and sent inline (bounded)."""
    uri = task.request.image_uri
    if not uri:
        return None
    if uri.startswith("gs://"):
        return types.Image(gcs_uri=uri, mime_type=mimetypes.guess_type(uri)[0] or "image/png")
    data, mime = fetch_image(uri)
    return types.Image(image_bytes=data, mime_type=mime)


def _verdict(exc: errors.APIError, policy: str) -> taxonomy.Verdict:
    if exc.code == 400 and any(m in str(exc.message).lower() for m in taxonomy.VEO_SAFETY_MARKERS):
        return taxonomy.content_policy(policy)
    return taxonomy.http_status(exc.code)


def _reason(exc: errors.APIError) -> str:
    return short(f"veo HTTP {exc.code} {exc.status or ''}: {exc.message or ''}")
