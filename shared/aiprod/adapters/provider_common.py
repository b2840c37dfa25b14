"""What the provider adapters share: refusing a request before it is sent, turning a verdict
into a ``ProviderError`` or a finished ``ProviderResult``, and short messages (the template
that uses them is ``provider_base.LiveBackend``).

No vendor import here: each SDK stays in its own adapter module, so a render function loads
only its provider's SDK.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from email.utils import parsedate_to_datetime

from aiprod.domain import taxonomy
from aiprod.domain.catalog import ModelSpec
from aiprod.domain.messages import RenderTask
from aiprod.domain.taxonomy import Verdict
from aiprod.exceptions import ConfigError, ProviderError
from aiprod.ports import ProviderResult

log = logging.getLogger(__name__)
MAX_MESSAGE = 500
MICROS_PER_RUNWAY_CREDIT = 10_000  # 1 credit = $0.01
NOT_DONE = ProviderResult(done=False)  # still running, or not answered: look again later
QUEUED = ProviderResult(done=False, queued=True)  # accepted, waiting in the provider's queue


def short(message: object) -> str:
    """A provider's message, bounded (it goes into job documents and events)."""
    text = " ".join(str(message).split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def error(
    verdict: Verdict, message: object, cost_micros: int = 0, retry_after_s: float | None = None
) -> ProviderError:
    error_class, code = verdict
    return ProviderError(error_class, code, short(message), cost_micros, retry_after_s)


def retry_after(response: object, now: float | None = None) -> float | None:
    """Seconds a ``Retry-After`` header asks for (delta-seconds or an HTTP date), from any
    response object with ``headers``; None when absent or unreadable."""
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    if not value:
        return None
    value = str(value).strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def rendered(output_uri: str, cost_micros: int) -> ProviderResult:
    """A finished render: its output and what it cost."""
    return ProviderResult(done=True, output_uri=output_uri, cost_micros=cost_micros)


def failed(verdict: Verdict, message: object, cost_micros: int = 0) -> ProviderResult:
    error_class, code = verdict
    return ProviderResult(
        done=True,
        error_class=error_class,
        error_code=code,
        message=short(message),
        cost_micros=cost_micros,
    )


def unkept(verdict: Verdict, message: object, cost_micros: int) -> ProviderResult:
    """A finished render whose output could not be kept this time: not done (keeping is
    tried again, a bounded number of times), but its cost is known and must be recorded."""
    return dataclasses.replace(failed(verdict, message, cost_micros), done=False)


def misconfigured(exc: ConfigError, submitted: bool = False) -> ProviderError:
    """A missing key or bucket. Before a submit nothing was sent: fall back (and let the
    circuit open). After one the task may finish and bill: UNKNOWN, looked at again later."""
    log.error("provider adapter misconfigured: %s", exc)
    verdict = taxonomy.MISCONFIGURED_AFTER_SUBMIT if submitted else taxonomy.MISCONFIGURED
    return error(verdict, exc)


def refuse_unless(condition: bool, message: str) -> None:
    """Refuse a request this provider cannot take, before anything is sent (no cost)."""
    if not condition:
        raise error(taxonomy.BAD_REQUEST, message)


def check_request(task: RenderTask, spec: ModelSpec, provider: str) -> None:
    """The catalog's capabilities, checked again at the edge (routing should never send
    anything else, but a paid call is the wrong place to find out)."""
    request = task.request
    refuse_unless(
        request.input_kind in spec.inputs, f"{provider} {task.model} takes no {request.input_kind}"
    )
    refuse_unless(
        request.duration_s in spec.durations_s,
        f"{provider} {task.model} renders {spec.durations_s} s, not {request.duration_s} s",
    )
    refuse_unless(
        request.resolution in spec.resolutions,
        f"{provider} {task.model} has no {request.resolution}",
    )


def catalog_cost(task: RenderTask, spec: ModelSpec) -> int:
    """Output seconds at the catalog's price for this resolution (and audio setting)."""
    return spec.price_for(task.request.resolution, task.request.duration_s) or 0
