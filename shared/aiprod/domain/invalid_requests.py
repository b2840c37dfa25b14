"""Invalid job messages: what is said about them, and the REJECTED job one leaves. Pure.

A message that fails the JobRequest contract but names a usable ``job_id`` becomes a REJECTED
job (reason ``invalid``, the message saying which field and why), so ``aiprod status`` explains
it like any other rejection. Its ``job_id`` is spent like any other job's: the same message
delivered again is a duplicate (its ``raw:`` payload hash matches), and another message under
that ``job_id``, a corrected one included, is refused with ``job.duplicate_rejected`` (the
README's rule: a job_id is an idempotency key, whatever became of its first request). A
message with no usable ``job_id`` has nobody to answer: it is logged and dead-lettered.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from pydantic import ValidationError

from aiprod.domain.control_messages import ControlRequest
from aiprod.domain.jobs import Job, JobStatus, new_job
from aiprod.domain.messages import (
    JOB_ID_PATTERN,
    TENANT_PATTERN,
    JobRequest,
    RejectReason,
    RenderOutcome,
    RenderTask,
)

MAX_MESSAGE_CHARS = 1000
MAX_ERRORS = 5
# Locations a log may name: the contracts' own field names. Any other key in a location came
# from the message (an unknown field, a metadata key) and is user data.
KNOWN_FIELDS = frozenset().union(
    *(m.model_fields for m in (JobRequest, RenderTask, RenderOutcome, ControlRequest))
)


@dataclass(frozen=True)
class Named:
    """What an invalid message says about itself that can be trusted: its job_id, and its
    tenant when that is valid too (so the rejection reaches the tenant's subscribers)."""

    job_id: str
    tenant: str | None = None


def describe(exc: ValidationError) -> str:
    """The first few errors, each as ``field: why``."""
    parts = []
    for error in exc.errors()[:MAX_ERRORS]:
        where = ".".join(str(p) for p in error["loc"]) or "message"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)[:MAX_MESSAGE_CHARS]


def log_summary(exc: ValidationError) -> str:
    """What a log may say about an invalid message: each error's location and type, with
    keys the message chose masked. Never the input, nor pydantic's message (a ``Literal``'s
    or a pattern's message is ours, but an error's text is not a place to trust)."""
    parts = []
    for error in exc.errors(include_input=False, include_url=False)[:MAX_ERRORS]:
        loc = [p if isinstance(p, int) or p in KNOWN_FIELDS else "<key>" for p in error["loc"]]
        parts.append(f"{'.'.join(map(str, loc)) or 'message'}: {error['type']}")
    return "; ".join(parts)


def salvage(data: bytes) -> Named | None:
    """The job_id (and tenant) of an invalid request, when it has a usable one to answer to."""
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    if not isinstance(body, dict):
        return None
    job_id, tenant = body.get("job_id"), body.get("tenant")
    if not (isinstance(job_id, str) and re.fullmatch(JOB_ID_PATTERN, job_id)):
        return None
    if not (isinstance(tenant, str) and re.fullmatch(TENANT_PATTERN, tenant)):
        tenant = None
    return Named(job_id, tenant)


def invalid_job(named: Named, payload_hash: str, message: str, now: float) -> Job:
    """The REJECTED job an invalid message leaves. Its request keeps only what was usable
    (the message itself may not even be storable: too large, or keys Firestore refuses)."""
    request = {"job_id": named.job_id}
    if named.tenant is not None:
        request["tenant"] = named.tenant
    return new_job(
        request,
        payload_hash,
        named.tenant,
        now,
        status=JobStatus.REJECTED,
        reason=RejectReason.INVALID,
        message=message,
        finished_at=now,
    )
