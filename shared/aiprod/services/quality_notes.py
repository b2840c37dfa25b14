"""What handle_outcome does with a checked output once its outcome is applied: count its
measured score, add it to its model's observed quality, and log a rejection.

Once per outcome (handle_outcome applies an outcome once; a redelivery finds it applied), and
after the settlement's commit, like the circuit update it sits beside: a QA rejection has
already moved the backend's circuit as a provider failure (``policy.counts_against_provider``);
here it is also made visible apart from provider errors (``quality/rejected``, and a log line
with ``event="qa_rejected"``).
"""

from __future__ import annotations

import logging

from aiprod.domain.error_codes import ErrorCode
from aiprod.domain.messages import RenderOutcome
from aiprod.domain.observed_quality import ObservedBook, lookup
from aiprod.services.health import HealthBook
from aiprod.services.telemetry import Telemetry, rejected_check

log = logging.getLogger(__name__)


def note_quality(
    telemetry: Telemetry,
    health: HealthBook,
    outcome: RenderOutcome,
    now: float,
    observed: ObservedBook,
    context: dict,
) -> None:
    """``observed`` is what the handler read before applying the outcome (its write skips
    when this output would change nothing)."""
    if outcome.qa is None:
        return  # not checked (the simulated backend, a failure before any output)
    telemetry.output_checked(outcome)
    health.record_quality(outcome, now, lookup(observed, outcome.backend, outcome.model))
    if outcome.error_code == ErrorCode.QA_FAILED:
        check = rejected_check(outcome)
        log.warning(
            "output of %s/%s rejected by QA: %s",
            outcome.backend,
            outcome.model,
            outcome.qa.reason or check,
            extra={**context, "event": "qa_rejected", "reason": check},
        )
