"""How each provider's failures map to the error taxonomy: tables, not ``if`` chains.

Pure (standard library only), so the whole mapping is tested without a provider. A verdict
is an ``(ErrorClass, ErrorCode)`` pair; codes in ``policy.NOT_PROVIDER_HEALTH`` (bad_request,
unauthorized, forbidden, caller_timeout, content_policy, lease_expired) do not move a circuit
breaker.

Rules (issue 3): moderation → content policy, TERMINAL by default or FALLBACK when configured;
throttling and 5xx → RETRY_SAME (the outcome handler retries twice, then falls back); a
rejected request → FALLBACK with the provider's message; a call that may have reached the
provider with no answer → UNKNOWN (the stored task is polled again, never re-rendered).
"""

from __future__ import annotations

from aiprod.domain.error_codes import ErrorCode
from aiprod.domain.messages import ErrorClass

Verdict = tuple[ErrorClass, ErrorCode]

THROTTLED: Verdict = (ErrorClass.RETRY_SAME, ErrorCode.THROTTLED)
SERVER_ERROR: Verdict = (ErrorClass.RETRY_SAME, ErrorCode.SERVER_ERROR)
UNREACHABLE: Verdict = (ErrorClass.RETRY_SAME, ErrorCode.UNREACHABLE)  # nothing was sent
BAD_REQUEST: Verdict = (ErrorClass.FALLBACK, ErrorCode.BAD_REQUEST)
UNAUTHORIZED: Verdict = (ErrorClass.FALLBACK, ErrorCode.UNAUTHORIZED)
FORBIDDEN: Verdict = (ErrorClass.FALLBACK, ErrorCode.FORBIDDEN)
PAYMENT_REQUIRED: Verdict = (ErrorClass.FALLBACK, ErrorCode.PAYMENT_REQUIRED)  # opens the circuit
PROVIDER_FAILED: Verdict = (ErrorClass.FALLBACK, ErrorCode.PROVIDER_FAILED)
CANCELLED: Verdict = (ErrorClass.FALLBACK, ErrorCode.CANCELLED)
OUTPUT_UNAVAILABLE: Verdict = (ErrorClass.FALLBACK, ErrorCode.OUTPUT_UNAVAILABLE)
# Rendered, but black, frozen, cut short, the wrong size... (domain/output_qa): not delivered.
QA_FAILED: Verdict = (ErrorClass.FALLBACK, ErrorCode.QA_FAILED)
# Our side (bucket missing or forbidden, storage down): not the provider's health.
OUTPUT_STORE_UNAVAILABLE: Verdict = (ErrorClass.FALLBACK, ErrorCode.OUTPUT_STORE_UNAVAILABLE)
MISCONFIGURED: Verdict = (ErrorClass.FALLBACK, ErrorCode.MISCONFIGURED)  # counts: opens the circuit
# The same after a submit: the task exists and may finish, so keep it (poll again once fixed).
MISCONFIGURED_AFTER_SUBMIT: Verdict = (ErrorClass.UNKNOWN, ErrorCode.MISCONFIGURED)
SUBMIT_UNCONFIRMED: Verdict = (ErrorClass.UNKNOWN, ErrorCode.SUBMIT_UNCONFIRMED)
MALFORMED: Verdict = (ErrorClass.UNKNOWN, ErrorCode.MALFORMED_RESPONSE)

HTTP_STATUS: dict[int, Verdict] = {
    400: BAD_REQUEST,
    401: UNAUTHORIZED,
    402: PAYMENT_REQUIRED,  # an empty account
    403: FORBIDDEN,
    404: BAD_REQUEST,  # unknown model or route: our request
    409: BAD_REQUEST,
    422: BAD_REQUEST,
    429: THROTTLED,
}


# Timeouts answered by a gateway or the client side of one: the create may have gone through.
UNCONFIRMED_STATUSES = frozenset({408, 499})


def content_policy(policy: str) -> Verdict:
    """A moderation refusal: TERMINAL unless configured (``AIPROD_CONTENT_POLICY``) to fall back."""
    cls = ErrorClass.FALLBACK if policy == "fallback" else ErrorClass.TERMINAL
    return (cls, ErrorCode.CONTENT_POLICY)


def http_status(status: int) -> Verdict:
    """An HTTP error answer to a create call. A 5xx (or a 408/499 timeout) does not prove
    that no task was made: a gateway may have lost the answer of a create that went through
    (Runway, Vertex AI and Replicate alike; docs/providers.md lists the sources). So it is
    UNKNOWN ``submit_unconfirmed``, never submitted again blindly; 4xx answers, 429 included,
    are refusals at the door."""
    if status >= 500 or status in UNCONFIRMED_STATUSES:
        return SUBMIT_UNCONFIRMED
    return HTTP_STATUS.get(status, BAD_REQUEST)


def cancel_status(status: int) -> Verdict:
    """An HTTP error answer to a cancel. Unlike a create's, a 5xx (or a gateway timeout)
    leaves nothing in doubt: a cancel is safe to repeat, so it is RETRY_SAME; 4xx answers
    are the provider's refusal, as for any call."""
    if status >= 500 or status in UNCONFIRMED_STATUSES:
        return SERVER_ERROR
    return HTTP_STATUS.get(status, BAD_REQUEST)


# Runway task failureCode prefixes, first match wins (docs.dev.runwayml.com/errors/task-failures).
RUNWAY_FAILURES: tuple[tuple[str, Verdict | None], ...] = (
    ("SAFETY.", None),  # None: content policy, as configured
    ("INPUT_PREPROCESSING.SAFETY", None),
    ("ASSET.INVALID", BAD_REQUEST),
    ("INTERNAL", PROVIDER_FAILED),
)


def runway_failure(code: str | None, policy: str) -> Verdict:
    for prefix, verdict in RUNWAY_FAILURES:
        if (code or "").startswith(prefix):
            return verdict or content_policy(policy)
    return PROVIDER_FAILED


# google.rpc.Code of a failed Vertex long-running operation.
GRPC_CODES: dict[int, Verdict] = {
    3: BAD_REQUEST,  # INVALID_ARGUMENT
    5: BAD_REQUEST,  # NOT_FOUND
    7: FORBIDDEN,  # PERMISSION_DENIED
    8: THROTTLED,  # RESOURCE_EXHAUSTED
    9: BAD_REQUEST,  # FAILED_PRECONDITION
    11: BAD_REQUEST,  # OUT_OF_RANGE
    16: UNAUTHORIZED,  # UNAUTHENTICATED
}
# Veo's safety filters answer in words, with "Support codes" (Vertex AI responsible-AI page).
VEO_SAFETY_MARKERS = ("usage guidelines", "support codes", "violate our policies", "safety filter")


def veo_operation_error(code: int | None, message: str, policy: str) -> Verdict:
    if any(marker in message.lower() for marker in VEO_SAFETY_MARKERS):
        return content_policy(policy)
    return GRPC_CODES.get(code or 0, PROVIDER_FAILED)


# Replicate terminal statuses other than succeeded; "aborted" = deadline passed before start.
REPLICATE_STATUSES: dict[str, Verdict] = {
    "canceled": CANCELLED,
    "aborted": PROVIDER_FAILED,
}
REPLICATE_SAFETY_MARKERS = ("nsfw", "safety", "sensitive", "content policy", "moderation")


def replicate_failure(status: str, error: str, policy: str) -> Verdict:
    if status == "failed" and any(m in error.lower() for m in REPLICATE_SAFETY_MARKERS):
        return content_policy(policy)
    return REPLICATE_STATUSES.get(status, PROVIDER_FAILED)
