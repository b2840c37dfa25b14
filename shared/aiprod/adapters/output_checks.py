"""Checking a finished output before it is delivered (technical QA, then the optional
semantic rating): the keeping adapter (``kept_outputs``) hands each output here as a local
file, spooled from the provider's URL or read from the bucket.

The file is the only copy held: it is written in chunks (never whole in memory) to a
temporary file, bounded by ``MAX_OUTPUT_BYTES``, and deleted once the output is kept. On
Cloud Functions the temporary folder is memory, so that bound is also the memory bound; a
render function's memory setting (infra) leaves room for it. The probe (PyAV) is imported on
the first check, not at cold start.
"""

from __future__ import annotations

import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, BinaryIO

from aiprod.domain.catalog import Catalog
from aiprod.domain.messages import RenderTask
from aiprod.domain.output_qa import Expectation, VideoFacts, assess, expectation_for
from aiprod.domain.qa_report import QaReport

log = logging.getLogger(__name__)
MAX_OUTPUT_BYTES = 512 * 1024 * 1024  # far past any clip we render (8 s 1080p: ~10-20 MB)
READ_BYTES = 1024 * 1024
DOWNLOAD_DEADLINE_S = 120.0  # a whole download (10 MB in 2 minutes is a broken URL)
# Frames are sampled from at most this many times the asked length: a far longer video fails
# its duration check anyway, and decoding it whole would cost minutes.
DECODE_FACTOR = 2.0
MAX_STORED_REPORT = 6000  # bytes of object metadata for the report (GCS allows 8 KiB in all)


class OutputTooLargeError(Exception):
    """The provider sent more than ``MAX_OUTPUT_BYTES``: not a clip we asked for."""


class OutputChecker:
    """Technical checks of a file against what its task asked for."""

    def __init__(self, catalog: Catalog):
        self._catalog = catalog

    def expectation(self, task: RenderTask) -> Expectation:
        return expectation_for(task.request, self._catalog.model(task.backend, task.model))

    def check_file(self, path: str, task: RenderTask, uri: str | None = None) -> QaReport:
        """The report of the file at ``path``, naming ``uri`` as the object checked."""
        from aiprod.adapters.video_probe import probe  # PyAV: loaded on the first check

        expected = self.expectation(task)
        facts = probe(path, decode_s=DECODE_FACTOR * expected.duration_s + expected.tolerance_s)
        return self._judged(facts, expected, task, uri)

    def too_large(self, task: RenderTask, uri: str | None = None) -> QaReport:
        facts = VideoFacts(error=f"larger than {MAX_OUTPUT_BYTES // 2**20} MiB")
        return self._judged(facts, self.expectation(task), task, uri)

    def _judged(
        self, facts: VideoFacts, expected: Expectation, task: RenderTask, uri: str | None
    ) -> QaReport:
        report = assess(facts, expected).model_copy(update={"checked_uri": uri})
        _log(report, facts, task)
        return report


@contextmanager
def spooled(source: BinaryIO | None = None) -> Iterator[BinaryIO]:
    """A temporary file (deleted on exit), filled from ``source`` in chunks when given."""
    with tempfile.NamedTemporaryFile(prefix="aiprod-output-", suffix=".mp4") as handle:
        if source is not None:
            copy_bounded(source, handle)
        handle.flush()
        yield handle


def copy_bounded(
    source: BinaryIO,
    target: BinaryIO,
    limit: int = MAX_OUTPUT_BYTES,
    deadline_s: float = DOWNLOAD_DEADLINE_S,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Copy in chunks, at most ``limit`` bytes and ``deadline_s`` seconds in all: a read
    timeout bounds each read, not a URL that drips a few bytes at a time. Past the deadline
    it raises ``TimeoutError`` (an ``OSError``: the output is "unkept", tried again later)."""
    written, ends = 0, clock() + deadline_s
    while chunk := source.read(READ_BYTES):
        written += len(chunk)
        if written > limit:
            raise OutputTooLargeError(f"output larger than {limit} bytes")
        if clock() > ends:
            raise TimeoutError(f"output download took over {deadline_s:.0f} s")
        target.write(chunk)
    return written


def verdict_labels(report: QaReport) -> dict[str, str]:
    """The verdict on the kept object itself: readable labels for whoever finds it in the
    bucket, and the whole report (``qa_report``), which a later look at the same provider
    task takes instead of checking (and paying for a rating) again. Object metadata holds
    8 KiB in all: a report too long to fit is left off (the object is then checked again)."""
    labels = {"qa": "passed" if report.passed else "failed", "qa_failed_checks": report.reason}
    whole = report.model_dump_json(exclude_defaults=True)
    if len(whole) <= MAX_STORED_REPORT:
        labels["qa_report"] = whole
    return labels


def stored_verdict(blob: Any, provider_task_id: str) -> QaReport | None:
    """The report a look at this same provider task already wrote on the object, if any."""
    metadata = (blob.metadata or {}) if blob is not None else {}
    if metadata.get("provider_task_id") != provider_task_id or "qa_report" not in metadata:
        return None
    try:
        return QaReport.model_validate_json(metadata["qa_report"])
    except ValueError:
        log.warning("a stored QA report is unreadable: the output is checked again")
        return None


def _log(report: QaReport, facts: VideoFacts, task: RenderTask) -> None:
    context = {
        "job_id": task.job_id,
        "attempt": task.attempt,
        "backend": task.backend,
        "model": task.model,
        "qa_passed": report.passed,
        "qa_failed_checks": report.failed_checks,
        "size_bytes": facts.size_bytes,
    }
    if report.passed:
        log.info("output passed QA", extra=context)
    else:
        log.warning("output failed QA: %s", report.reason, extra=context)
