"""The wire contracts: what clients publish, what functions pass each other, what users read.

Strict on the way in (unknown fields and wrong types are refused with a reason), so a bad
message is rejected once, with an event, instead of crashing a function in a retry loop.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from aiprod.domain import payloads
from aiprod.domain.image_uris import check_image_uri
from aiprod.domain.money import cap_micros
from aiprod.domain.payloads import UNORDERED
from aiprod.domain.qa_report import QaReport

# Usable as a Firestore document id: no '/', not '.' or '..', not '__…__', at most 128 chars.
JOB_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"
TENANT_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,62}$"
NAME_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,39}$"  # a backend's name, in internal messages
MAX_METADATA_BYTES = 4096
MAX_METADATA_KEYS = 32
IMAGE_URI_SCHEMES = ("https://", "gs://")
IMAGE_BUCKETS = "image_buckets"  # validation context key: the gs:// buckets allowed

Resolution = Literal["480p", "720p", "1080p"]
AspectRatio = Literal["16:9", "9:16", "1:1"]


class Priority(StrEnum):
    QUALITY = "quality"
    COST = "cost"
    SPEED = "speed"


class ErrorClass(StrEnum):
    """The closed taxonomy every provider error is mapped to (design.md, rules)."""

    RETRY_SAME = "RETRY_SAME"
    FALLBACK = "FALLBACK"
    TERMINAL = "TERMINAL"
    UNKNOWN = "UNKNOWN"


class RejectReason(StrEnum):
    INVALID = "invalid"
    NO_CAPABLE_BACKEND = "no_capable_backend"
    OVER_BUDGET = "over_budget"
    BUDGET_CRITICAL = "budget_critical"
    CONFLICT = "conflict"
    # our output bucket is failing (its circuit is open): a render now would be paid for
    # and could not be delivered
    OUTPUT_STORE_UNAVAILABLE = "output_store_unavailable"


class EventType(StrEnum):
    ACCEPTED = "job.accepted"
    QUEUED = "job.queued"  # accepted and funded, waiting for a render slot
    REJECTED = "job.rejected"
    COMPLETED = "job.completed"
    FAILED = "job.failed"
    # A message reused a job's job_id for another payload: that message is refused, the job
    # itself is untouched (never ``job.rejected``, which means this job failed).
    DUPLICATE_REJECTED = "job.duplicate_rejected"
    CANCELLED = "job.cancelled"  # a cancel ended the job (what it cost is charged)
    # A cancel that did not cancel: no such job, over already, or its render finished first
    # (the job itself keeps its own status and events).
    CANCEL_REFUSED = "job.cancel_refused"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class JobRequest(_Strict):
    """A client's request for one video; `job_id` is the client's idempotency key."""

    job_id: Annotated[str, Field(pattern=JOB_ID_PATTERN)]
    prompt: Annotated[str, Field(min_length=1, max_length=2000)]
    image_uri: Annotated[str | None, Field(max_length=2048)] = None
    duration_s: Annotated[int, Field(ge=1, le=60)] = 5
    aspect_ratio: AspectRatio = "16:9"
    resolution: Resolution = "720p"
    quality_min: Annotated[float, Field(ge=0.0, le=1.0)] = 0.0
    max_cost_usd: Annotated[float | None, Field(gt=0.0, le=10_000.0)] = None
    priority: Priority = Priority.QUALITY
    # An allow-list, not a preference order (the chain is ordered by ``priority`` and the
    # catalog): its order is not part of the payload hash. Names are checked against the
    # catalog at admission (``selection.plan_route``).
    backends: Annotated[list[str] | None, Field(min_length=1, max_length=10), UNORDERED] = None
    tenant: Annotated[str | None, Field(pattern=TENANT_PATTERN)] = None
    metadata: dict[str, str] = Field(default_factory=dict)

    @field_validator("prompt")
    @classmethod
    def _prompt_has_text(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("prompt must contain text")
        if any((ord(c) < 0x20 and c not in "\t\n\r") or ord(c) == 0x7F for c in value):
            raise ValueError("prompt must not contain control characters")  # NUL, ESC…
        return value

    @field_validator("image_uri")
    @classmethod
    def _image_uri_safe(cls, value: str | None, info: ValidationInfo) -> str | None:
        """No inside host, no bucket the operator did not list (``domain.image_uris``).
        The allowed buckets come in the validation context (``IMAGE_BUCKETS``) where the
        settings are known: the router and the render functions pass them."""
        if value is not None:
            context = info.context if isinstance(info.context, dict) else {}
            check_image_uri(value, context.get(IMAGE_BUCKETS))
        return value

    @field_validator("metadata")
    @classmethod
    def _metadata_small(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > MAX_METADATA_KEYS:
            raise ValueError(f"metadata has more than {MAX_METADATA_KEYS} keys")
        if len(json.dumps(value).encode()) > MAX_METADATA_BYTES:
            raise ValueError(f"metadata is larger than {MAX_METADATA_BYTES} bytes")
        return value

    @property
    def input_kind(self) -> Literal["text", "image"]:
        return "image" if self.image_uri else "text"

    @property
    def max_cost_micros(self) -> int | None:
        return None if self.max_cost_usd is None else cap_micros(self.max_cost_usd)

    def payload_hash(self) -> str:
        """Canonical fingerprint of the request, to tell a redelivery from a reused job_id
        (``domain.payloads``: defaults and the order of ``backends`` left out)."""
        return payloads.payload_hash(self)

    def same_payload(self, stored_hash: str) -> bool:
        """Is this the request a job was stored with (in that job's hash version)?"""
        return payloads.same_payload(stored_hash, self)


class RenderTask(_Strict):
    """Router or outcome handler → one backend's render function: render this attempt."""

    job_id: Annotated[str, Field(pattern=JOB_ID_PATTERN)]
    attempt: Annotated[int, Field(ge=1, le=1000)]
    backend: Annotated[str, Field(pattern=NAME_PATTERN)]
    model: Annotated[str, Field(min_length=1, max_length=200)]
    request: JobRequest
    hold_micros: Annotated[int, Field(ge=0)]
    not_before: float = 0.0


class RenderOutcome(_Strict):
    """Render function → outcome handler: what the provider did with one attempt."""

    job_id: Annotated[str, Field(pattern=JOB_ID_PATTERN)]
    attempt: Annotated[int, Field(ge=1, le=1000)]
    backend: Annotated[str, Field(pattern=NAME_PATTERN)]
    model: Annotated[str, Field(min_length=1, max_length=200)]
    succeeded: bool
    error_class: ErrorClass | None = None
    error_code: str | None = None
    message: str = ""
    cost_micros: Annotated[int, Field(ge=0)] = 0
    # The cost is the hold, charged as the worst case of a create nobody could confirm; a
    # task found later replaces it with what the task really cost.
    cost_estimated: bool = False
    output_uri: str | None = None
    provider_task_id: str | None = None
    started_at: float = 0.0
    finished_at: float = 0.0
    # Of that time, how long the task waited in the provider's own queue before rendering.
    provider_queue_s: Annotated[float, Field(ge=0)] = 0.0
    # A throttling provider's Retry-After: a RETRY_SAME waits at least this long.
    retry_after_s: Annotated[float, Field(ge=0, le=86_400)] | None = None
    # The output's QA (``domain/output_qa``): on a success, and on a ``qa_failed`` failure.
    qa: QaReport | None = None

    @model_validator(mode="after")
    def _one_verdict(self) -> RenderOutcome:
        """A success has no error class: "succeeded, UNKNOWN" would be read as a wait by
        one rule and settled as a success by another."""
        if self.succeeded and self.error_class is not None:
            raise ValueError("a succeeded outcome has no error_class")
        return self


class AttemptSummary(_Strict):
    attempt: int
    backend: str
    model: str
    state: str
    error_class: ErrorClass | None = None
    error_code: str | None = None
    reason: str | None = None
    cost_micros: int = 0
    qa: QaReport | None = None


class JobEvent(_Strict):
    """Published on the public events topic; `type`, `job_id`, `tenant` are also attributes."""

    type: EventType
    job_id: str
    tenant: str | None = None
    status: str
    reason: str | None = None
    message: str = ""
    backends_tried: list[str] = Field(default_factory=list)
    backend: str | None = None
    model: str | None = None
    output_uri: str | None = None
    cost_micros: int = 0
    cost_usd: str = "0.000000"
    qa: QaReport | None = None  # the delivered output's checks and measured quality
    attempts: list[AttemptSummary] = Field(default_factory=list)
    accepted_at: float | None = None
    finished_at: float | None = None
    duration_s: float | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    # job.duplicate_rejected only: the hash of the refused message's payload.
    payload_hash: str | None = None

    def attributes(self) -> dict[str, str]:
        attrs = {"type": self.type.value, "job_id": self.job_id}
        if self.tenant:
            attrs["tenant"] = self.tenant
        return attrs
