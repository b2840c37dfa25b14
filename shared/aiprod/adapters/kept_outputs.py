"""Outputs kept in the project's bucket before success is declared: the only module that
imports ``google-cloud-storage``.

Provider URLs expire (Replicate after an hour, Runway in 24-48 hours), so a finished output is
streamed (never held whole in memory) into ``gs://{bucket}/videos/{job}/attempt-{n}.mp4``, a
name stable per job and attempt, so a repeated poll overwrites the same object. A video Veo
already wrote into the bucket is checked to exist and given the same metadata.

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
import re
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
)
from aiprod.adapters.provider_base import LazyClient
from aiprod.adapters.provider_common import failed, unkept
from aiprod.config import ProviderSettings
from aiprod.domain import taxonomy
from aiprod.domain.catalog import Catalog
from aiprod.domain.messages import RenderTask
from aiprod.domain.qa_report import QaReport
from aiprod.domain.semantic_qa import Rating, rated
from aiprod.domain.spend_audit import ProviderDay, ProviderTask
from aiprod.exceptions import ConfigError
from aiprod.ports import ProviderResult, SpendSource, VideoBackend

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
        if report.passed and self._rater is not None:  # read from the bucket, so kept first
            rating = self._rater.rate(uri, task)
            report = rated(report, rating, self._settings.semantic_qa)
            cost += rating.cost_micros  # charged with the render, on the job's scopes
        if not report.passed:  # rendered (so charged), but not delivered: the job falls back
            message = f"the output failed QA: {report.reason}"
            return dataclasses.replace(failed(taxonomy.QA_FAILED, message, cost), qa=report)
        return dataclasses.replace(result, output_uri=uri, cost_micros=cost, qa=report)

    def _keep(self, source: str, task: RenderTask, provider_task_id: str) -> tuple[str, QaReport]:
        """Keep the output and check it. A rejected output is kept too (labelled), so an
        operator can look at what the provider sent; it is just never delivered."""
        bucket = self.client().bucket(self._settings.bucket())
        metadata = {
            "job_id": task.job_id,
            "attempt": str(task.attempt),
            "backend": task.backend,
            "model": task.model,
            "provider_task_id": provider_task_id,
        }
        if source.startswith("gs://"):
            return self._adopt(bucket, source, metadata, task)
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
                    report = self._checker.check_file(file.name, task)
                    blob.metadata = {**metadata, **_labels(report)}
                    file.seek(0)
                    blob.upload_from_file(file, content_type=content_type)
            except OutputTooLargeError:
                return "", self._checker.too_large(task)
        uri = f"gs://{bucket.name}/{blob.name}"
        log.info("output kept in the bucket", extra={"job_id": task.job_id, "size": blob.size})
        return uri, report.model_copy(update={"checked_uri": uri})

    def _adopt(
        self, bucket: Any, uri: str, metadata: dict[str, str], task: RenderTask
    ) -> tuple[str, QaReport]:
        """A video the provider wrote into the bucket: it must be there; check it, label it."""
        bucket_name, _, name = uri.removeprefix("gs://").partition("/")
        if bucket_name != bucket.name:
            raise OutputGoneError(f"output {uri} is outside the bucket {bucket.name}")
        blob = bucket.get_blob(name)
        if blob is None:
            raise OutputGoneError(f"output {uri} is not in the bucket")
        if (blob.size or 0) > MAX_OUTPUT_BYTES:
            return uri, self._checker.too_large(task)
        with spooled() as file:
            blob.download_to_file(file)
            file.flush()
            report = self._checker.check_file(file.name, task)
        blob.metadata = {**(blob.metadata or {}), **metadata, **_labels(report)}
        blob.patch()
        return uri, report.model_copy(update={"checked_uri": uri})

    def _connect(self) -> Any:
        return storage.Client(project=self._project)


def _labels(report: QaReport) -> dict[str, str]:
    """The QA verdict on the object itself, for whoever finds it in the bucket."""
    return {"qa": "passed" if report.passed else "failed", "qa_failed_checks": report.reason}


def _why(where: str, exc: Exception) -> str:
    """What failed, without the exception's text (it may carry a signed URL)."""
    if isinstance(exc, ConfigError):
        return f"{where}: {exc}"
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return f"{where}: {type(exc).__name__}" + (f" (HTTP {status})" if status else "")


def object_name(task: RenderTask) -> str:
    return f"videos/{task.job_id}/attempt-{task.attempt}.mp4"


# Where Veo writes an attempt's video (``veo.output_prefix``, not imported: that module loads
# google-genai): ``videos/{job_id}/attempt-{n}/sample_0.mp4``. Kept outputs of the other
# providers are files beside those folders (``object_name``), so they never match.
VEO_OBJECT = re.compile(r"^videos/(?P<job_id>[^/]+)/attempt-(?P<attempt>\d+)/")


class VeoOutputs(LazyClient, SpendSource):
    """The spend audit's view of Veo, which bills each video it writes into our bucket: the
    objects under the output prefix created in the window, one render per attempt folder."""

    provider = "veo"

    def __init__(self, settings: ProviderSettings, catalog: object = None, project: str = ""):
        self._settings, self._project = settings, project

    def day(self, day: str, start: float, end: float, stored: list[str]) -> ProviderDay:
        bucket = self._settings.bucket()
        found: dict[str, ProviderTask] = {}
        for blob in self.client().list_blobs(bucket, prefix="videos/"):
            match = VEO_OBJECT.match(blob.name)
            created = blob.time_created.timestamp() if blob.time_created else None
            if match is None or created is None or not start <= created < end:
                continue
            key = f"{match['job_id']}/attempt-{match['attempt']}"
            model = (blob.metadata or {}).get("model", "")
            uri = f"gs://{bucket}/{blob.name}"
            found.setdefault(key, ProviderTask(key, uri, model, "written", True, None))
        return ProviderDay(self.provider, day, tuple(found.values()))

    def _connect(self) -> Any:
        return storage.Client(project=self._project)
