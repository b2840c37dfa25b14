"""Outputs kept in the project's bucket, and checked, before success is declared (with
``veo_outputs``, the only modules that import ``google-cloud-storage``).

Provider URLs expire (Replicate after an hour, Runway in 24-48 hours), so a finished output is
streamed (never held whole in memory) into ``gs://{bucket}/videos/{job}/attempt-{n}.mp4``, a
name stable per job and attempt, so a repeated poll overwrites the same object. A video Veo
already wrote into the bucket is checked to exist and given the same metadata. Each is
checked on the way (``output_checks``: technical QA, then the optional rating): a failed
check fails the attempt ``qa_failed`` (FALLBACK), charged what the provider reported.

- the URL is gone (403/404/410) → the attempt fails FALLBACK ``output_unavailable``, still
  charged what the provider reported (it rendered);
- the URL fails otherwise (5xx, a broken download) → "unkept" ``output_unavailable``, and
  the bucket refusing it (missing, forbidden, storage down, no bucket configured) → "unkept"
  ``output_store_unavailable`` (ours: it does not count against the provider). Unkept is not
  done, but it carries the cost: the render function writes it on the attempt at once and
  tries again (a fresh look at a Runway task hands out a fresh URL), a bounded number of
  times, then closes the attempt charged that cost (``domain.submissions.MAX_KEEP_TRIES``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any, Protocol

import requests
from google.api_core import exceptions as gcs_errors
from google.auth import exceptions as auth_errors
from google.cloud import storage
from urllib3 import exceptions as urllib3_errors

from aiprod.adapters.output_checks import (
    MAX_OUTPUT_BYTES,
    OutputChecker,
    OutputTooLargeError,
    spooled,
    stored_verdict,
    verdict_labels,
)
from aiprod.adapters.provider_base import LazyClient
from aiprod.adapters.provider_common import failed, unkept
from aiprod.config import ProviderSettings
from aiprod.domain import taxonomy
from aiprod.domain.catalog import Catalog
from aiprod.domain.messages import RenderTask
from aiprod.domain.qa_report import QaReport
from aiprod.domain.semantic_qa import Rating, rated
from aiprod.exceptions import ConfigError
from aiprod.ports import ProviderResult, VideoBackend

log = logging.getLogger(__name__)
GONE = frozenset({403, 404, 410})
CHUNK_BYTES = 8 * 1024 * 1024  # resumable upload chunk: the most held in memory at once


class Rater(Protocol):
    def rate(self, gs_uri: str, task: RenderTask) -> Rating: ...


class OutputGoneError(Exception):
    """The provider's output URL no longer serves the video."""


class KeptOutputs(LazyClient, VideoBackend):
    """Wraps a provider adapter (any ``VideoBackend``); only a finished output passes
    through differently."""

    def __init__(
        self,
        inner: VideoBackend,
        settings: ProviderSettings,
        project: str,
        catalog: Catalog,
        rater: Rater | None = None,  # the semantic rating, when AIPROD_QA_SEMANTIC is on
    ):
        self.name = inner.name
        self._inner, self._settings, self._project = inner, settings, project
        self._checker, self._rater = OutputChecker(catalog), rater

    def submit(self, task: RenderTask, before_send: Callable[[], None] | None = None) -> str:
        return self._inner.submit(task, before_send)

    @property
    def can_find(self) -> bool:
        return self._inner.can_find

    def find(self, task: RenderTask, sent_at: float) -> str | None:
        return self._inner.find(task, sent_at)

    @property
    def can_cancel(self) -> bool:
        return self._inner.can_cancel

    def cancel(self, provider_task_id: str, task: RenderTask) -> bool:
        return self._inner.cancel(provider_task_id, task)

    def poll_cost(self, provider_task_id: str, task: RenderTask) -> ProviderResult:
        """A late task's look: what it cost; its output is not kept, checked or rated."""
        return self._inner.poll(provider_task_id, task)

    def poll(self, provider_task_id: str, task: RenderTask) -> ProviderResult:
        result = self._inner.poll(provider_task_id, task)
        if not result.done or result.error_class is not None or not result.output_uri:
            return result
        cost = result.cost_micros
        try:
            uri, report = self._keep(result.output_uri, task, provider_task_id)
        except OutputGoneError as exc:
            return failed(taxonomy.OUTPUT_UNAVAILABLE, exc, cost)
        except (ConfigError, gcs_errors.GoogleAPIError, auth_errors.GoogleAuthError) as exc:
            log.warning("output not kept: the bucket refused it (%s)", type(exc).__name__)
            return unkept(taxonomy.OUTPUT_STORE_UNAVAILABLE, _why("the output bucket", exc), cost)
        except (requests.RequestException, urllib3_errors.HTTPError, OSError) as exc:
            # a download broken half-way surfaces from the raw stream as urllib3's own error
            log.warning("output not kept yet (%s); will look again", type(exc).__name__)
            return unkept(taxonomy.OUTPUT_UNAVAILABLE, _why("the output URL", exc), cost)
        cost += report.semantic_cost_micros  # the rating, charged with the render
        if not report.passed:  # rendered (so charged), but not delivered: the job falls back
            message = f"the output failed QA: {report.reason}"
            return dataclasses.replace(failed(taxonomy.QA_FAILED, message, cost), qa=report)
        return dataclasses.replace(result, output_uri=uri, cost_micros=cost, qa=report)

    def _keep(self, source: str, task: RenderTask, provider_task_id: str) -> tuple[str, QaReport]:
        """Keep the output and check it, once per provider task: the verdict (and a rating,
        with its cost) is written on the object, and a later look at the same task (a
        redelivery, the reconciler, a cancel's look) takes it from there instead of checking
        and paying for a rating again. A rejected output is kept too (labelled), so an
        operator can look at what the provider sent; it is just never delivered."""
        bucket = self.client().bucket(self._settings.bucket())
        adopted = source.startswith("gs://")
        name = self._adopted_name(bucket, source) if adopted else object_name(task)
        uri = f"gs://{bucket.name}/{name}"
        existing = bucket.get_blob(name)  # one read: a stored verdict, or Veo's video
        known = stored_verdict(existing, provider_task_id)
        if known is not None:
            return uri, known
        metadata = {
            "job_id": task.job_id,
            "attempt": str(task.attempt),
            "backend": task.backend,
            "model": task.model,
            "provider_task_id": provider_task_id,
        }
        if adopted:
            blob, report = self._adopt(existing, uri, task)
        else:
            blob, report = self._stream(bucket, source, task, metadata, uri)
        if blob is None:  # too large to keep
            return "", report
        final = self._rate(report, uri, task) if report.passed else report
        if adopted or final != report:
            blob.metadata = {**(blob.metadata or {}), **metadata, **verdict_labels(final)}
            blob.patch()
        return uri, final

    def _stream(
        self, bucket: Any, source: str, task: RenderTask, metadata: dict[str, str], uri: str
    ) -> tuple[Any, QaReport]:
        """A provider's URL, spooled (bounded), checked, then uploaded with its verdict."""
        blob = bucket.blob(object_name(task), chunk_size=CHUNK_BYTES)
        with requests.get(source, stream=True, timeout=(10, 60)) as response:
            if response.status_code in GONE:
                raise OutputGoneError(f"{task.backend} output URL answered {response.status_code}")
            response.raise_for_status()
            response.raw.decode_content = True
            content_type = response.headers.get("content-type", "").split(";")[0]
            if not content_type.startswith("video/"):
                content_type = "video/mp4"
            try:
                with spooled(response.raw) as file:
                    report = self._checker.check_file(file.name, task, uri)
                    blob.metadata = {**metadata, **verdict_labels(report)}
                    file.seek(0)
                    blob.upload_from_file(file, content_type=content_type)
            except OutputTooLargeError:
                return None, self._checker.too_large(task)
        log.info("output kept in the bucket", extra={"job_id": task.job_id, "size": blob.size})
        return blob, report

    def _adopted_name(self, bucket: Any, uri: str) -> str:
        bucket_name, _, name = uri.removeprefix("gs://").partition("/")
        if bucket_name != bucket.name:
            raise OutputGoneError(f"output {uri} is outside the bucket {bucket.name}")
        return name

    def _adopt(self, blob: Any, uri: str, task: RenderTask) -> tuple[Any, QaReport]:
        """A video the provider wrote into the bucket: it must be there; check it."""
        if blob is None:
            raise OutputGoneError(f"output {uri} is not in the bucket")
        if (blob.size or 0) > MAX_OUTPUT_BYTES:
            return blob, self._checker.too_large(task, uri)
        with spooled() as file:
            blob.download_to_file(file)
            file.flush()
            return blob, self._checker.check_file(file.name, task, uri)

    def _rate(self, report: QaReport, uri: str, task: RenderTask) -> QaReport:
        """The semantic rating, when on: read from the bucket, so after the output is kept.
        It never fails the render (``GeminiRater.rate`` answers every failure)."""
        if self._rater is None:
            return report
        try:
            rating = self._rater.rate(uri, task)
        except Exception as exc:  # raised before anything was sent (it answers the rest)
            log.exception("the rating raised", extra={"job_id": task.job_id})
            rating = Rating(None, 0, "", error=f"the rating raised {type(exc).__name__}")
        return rated(report, rating, self._settings.semantic_qa)

    def _connect(self) -> Any:
        return storage.Client(project=self._project)


def _why(where: str, exc: Exception) -> str:
    """What failed, without the exception's text (it may carry a signed URL)."""
    if isinstance(exc, ConfigError):
        return f"{where}: {exc}"
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return f"{where}: {type(exc).__name__}" + (f" (HTTP {status})" if status else "")


def object_name(task: RenderTask) -> str:
    return f"videos/{task.job_id}/attempt-{task.attempt}.mp4"
