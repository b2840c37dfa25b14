"""The closed vocabularies of failure: why an attempt failed (``ErrorCode``) and why a job
did (``FailReason``). Pure (standard library only).

An ``ErrorCode`` goes with an ``ErrorClass`` on a failed attempt (``RenderOutcome``, the
attempt in the job document, ``ProviderResult``, ``ProviderError``); the class decides what
happens next, the code says what happened. Every code aiprod writes is a member here: the
provider verdicts (``taxonomy``), our own timeouts (render, reconciler) and the simulated
provider's defaults. Stored documents hold the plain string, and a StrEnum member equals its
string, so documents written before the enum read the same.

A ``FailReason`` is the ``reason`` of a FAILED job (its ``job.failed`` event, the
``jobs/finished`` metric): which rule ended the job, not what the provider said. Rejections
have their own reasons (``messages.RejectReason``).
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """What went wrong with one attempt (the class, not the code, decides what follows)."""

    # A provider's answer (domain/taxonomy.py).
    THROTTLED = "throttled"  # 429 or RESOURCE_EXHAUSTED
    SERVER_ERROR = "server_error"  # 5xx, 408
    UNREACHABLE = "unreachable"  # refused before anything was sent
    BAD_REQUEST = "bad_request"  # our request (refused at the edge, or by the provider)
    UNAUTHORIZED = "unauthorized"
    PAYMENT_REQUIRED = "payment_required"  # an empty account
    FORBIDDEN = "forbidden"
    CONTENT_POLICY = "content_policy"  # moderation
    PROVIDER_FAILED = "provider_failed"  # the render failed at the provider
    CANCELLED = "cancelled"
    OUTPUT_UNAVAILABLE = "output_unavailable"  # rendered, but the output could not be fetched
    OUTPUT_STORE_UNAVAILABLE = "output_store_unavailable"  # rendered; our bucket refused it
    QA_FAILED = "qa_failed"  # rendered, but the video failed a check (domain/output_qa)
    MISCONFIGURED = "misconfigured"  # a missing key, bucket or credentials
    SUBMIT_UNCONFIRMED = "submit_unconfirmed"  # the create's answer was lost
    MALFORMED_RESPONSE = "malformed_response"  # the create's answer was unreadable
    # Ours.
    CALLER_TIMEOUT = "caller_timeout"  # the render function stopped waiting (services/render)
    LEASE_EXPIRED = "lease_expired"  # nobody finished the attempt (domain/leases)
    WALL_TIME_EXCEEDED = "wall_time_exceeded"  # the job ran past its wall-time cap
    POLL_FAILED = "poll_failed"  # a poll raised, or its answer could not be read (UNKNOWN)
    CANCEL_REQUESTED = "cancel_requested"  # the job was cancelled (domain/cancellation)
    # The simulated provider's defaults (adapters/simulated; AIPROD_SIMULATION may name any).
    UNAVAILABLE = "unavailable"  # a scripted outage refused the submit
    RENDER_FAILED = "render_failed"  # a scripted failure of a submitted render


class FailReason(StrEnum):
    """Why a job ended FAILED (``domain/policy.plan_after_failure`` decides)."""

    CHAIN_EXHAUSTED = "chain_exhausted"  # no untried backend is up and fits the budget
    ATTEMPTS_EXHAUSTED = "attempts_exhausted"  # the attempt cap or the wall time was reached
    TERMINAL = "terminal"  # the last attempt failed TERMINAL (the request itself is bad)
    WALL_TIME_EXCEEDED = "wall_time_exceeded"  # the reconciler failed it past its wall time
    OUTPUT_STORE_UNAVAILABLE = "output_store_unavailable"  # our bucket's circuit is open
