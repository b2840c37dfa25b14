"""What happens after a failed attempt: retry the same backend, fall back, or fail the job.

The error class comes from the adapter (``ErrorClass``); this module only applies the caps
(attempts, same-backend retries, wall time) so every fallback chain is finite.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from aiprod.domain.error_codes import ErrorCode, FailReason
from aiprod.domain.health import OUTPUT_STORE, Circuit, CircuitState
from aiprod.domain.jobs import ChainStep, Job
from aiprod.domain.messages import ErrorClass, RenderOutcome
from aiprod.domain.selection import fallback_steps

# Error codes that say nothing about a provider's health: our request, our own timeout, or
# the provider's rate limit (a 429 means "slow down", not "broken": the retry backs off).
# ``qa_failed`` is not among them: a rendered output that fails a technical check is the
# provider's own bad work, so it counts against its circuit like any provider failure.
NOT_PROVIDER_HEALTH = frozenset(
    {
        ErrorCode.THROTTLED,
        ErrorCode.BAD_REQUEST,
        ErrorCode.UNAUTHORIZED,
        ErrorCode.FORBIDDEN,
        ErrorCode.CALLER_TIMEOUT,
        ErrorCode.CONTENT_POLICY,
        ErrorCode.LEASE_EXPIRED,
        ErrorCode.OUTPUT_STORE_UNAVAILABLE,
        ErrorCode.CANCELLED,  # we asked for it (a cancel, or a late task nobody will use)
    }
)


class Next(StrEnum):
    RETRY_SAME = "retry_same"
    FALLBACK = "fallback"
    FAIL = "fail"
    WAIT = "wait"  # outcome unknown: keep the hold, let the stored task be polled again
    CANCEL = "cancel"  # a cancel was asked for: the job ends CANCELLED (domain.cancellation)


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 6
    max_retries_same: int = 2
    base_backoff_s: float = 2.0
    max_backoff_s: float = 60.0
    max_wall_s: float = 3600.0

    def backoff(self, retry_number: int, asked_s: float | None = None) -> float:
        """Exponential, and at least what the provider asked for (Retry-After), both capped
        at ``max_backoff_s`` so a job is never parked for longer than that."""
        grown = self.base_backoff_s * 2 ** max(0, retry_number - 1)
        return min(max(grown, asked_s or 0.0), self.max_backoff_s)


def after_failure(job: Job, outcome: RenderOutcome, policy: RetryPolicy, now: float) -> Next:
    cls = outcome.error_class or ErrorClass.FALLBACK
    if cls is ErrorClass.UNKNOWN:
        return Next.WAIT
    if cls is ErrorClass.TERMINAL:
        return Next.FAIL
    if len(job.attempts) >= policy.max_attempts or now - job.created_at >= policy.max_wall_s:
        return Next.FAIL
    if cls is ErrorClass.RETRY_SAME and job.retries_on(outcome.backend) < policy.max_retries_same:
        return Next.RETRY_SAME
    return Next.FALLBACK


def counts_against_provider(outcome: RenderOutcome) -> bool:
    """Does this outcome move the backend's circuit breaker?"""
    if outcome.succeeded:
        return True
    if outcome.error_class in (ErrorClass.TERMINAL, ErrorClass.UNKNOWN):
        return False
    return outcome.error_code not in NOT_PROVIDER_HEALTH


@dataclass(frozen=True)
class NextAttempt:
    """One way to continue a job: its decision, the step to dispatch, and when."""

    decision: Next
    step: ChainStep
    not_before: float = 0.0


@dataclass(frozen=True)
class AfterFailure:
    """What may follow a failed attempt: options in order of preference (the first whose hold
    fits wins), or none; ``reason`` names the failure when no option is taken (empty when
    the attempt's outcome is awaited)."""

    options: tuple[NextAttempt, ...] = ()
    reason: FailReason | str = FailReason.CHAIN_EXHAUSTED
    wait: bool = False


def plan_after_failure(
    job: Job,
    outcome: RenderOutcome,
    policy: RetryPolicy,
    circuits: Mapping[str, Circuit],
    now: float,
) -> AfterFailure:
    """Retry the same backend while its circuit is closed and retries remain, then the
    untried backends of the chain that are up; TERMINAL and the caps end the job."""
    decision = after_failure(job, outcome, policy, now)
    if decision is Next.WAIT:
        return AfterFailure(wait=True, reason="")
    store = circuits.get(OUTPUT_STORE)
    if decision is not Next.FAIL and store is not None and not store.admits(now):
        # our bucket keeps failing: another provider's render could not be kept either
        return AfterFailure(reason=FailReason.OUTPUT_STORE_UNAVAILABLE)
    if decision is Next.FAIL:
        if outcome.error_code == ErrorCode.WALL_TIME_EXCEEDED:
            return AfterFailure(reason=FailReason.WALL_TIME_EXCEEDED)
        terminal = outcome.error_class is ErrorClass.TERMINAL
        return AfterFailure(
            reason=FailReason.TERMINAL if terminal else FailReason.ATTEMPTS_EXHAUSTED
        )
    options: list[NextAttempt] = []
    if decision is Next.RETRY_SAME:
        circuit = circuits.get(outcome.backend)
        step = next((s for s in job.chain if s.backend == outcome.backend), None)
        if step is not None and (circuit is None or circuit.state is CircuitState.CLOSED):
            retry = job.retries_on(outcome.backend) + 1
            wait = policy.backoff(retry, asked_s=outcome.retry_after_s)
            options.append(NextAttempt(Next.RETRY_SAME, step, now + wait))
    tried = job.backends_tried()
    options += [
        NextAttempt(Next.FALLBACK, s) for s in fallback_steps(job.chain, tried, circuits, now)
    ]
    return AfterFailure(tuple(options))
