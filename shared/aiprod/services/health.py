"""Circuit states and observed model quality, read (failing open) and updated after each
outcome.

Every circuit read and change is also reported as the backend's circuit-state gauge, so the
dashboard's backend health and the "open for 15 minutes" alert see what routing saw. The
observed quality (``domain.observed_quality``) is read in the same batched get as the
circuits and updated after the settlement's commit, like a circuit: advisory data, so a
failed read or write is logged and never fails the message.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiprod.domain.error_codes import ErrorCode
from aiprod.domain.health import OUTPUT_STORE, Circuit
from aiprod.domain.messages import RenderOutcome
from aiprod.domain.observed_quality import Observed, ObservedBook
from aiprod.domain.policy import counts_against_provider
from aiprod.ports import DocumentStore, Transaction
from aiprod.repositories import circuits as circuit_records
from aiprod.services.telemetry import Telemetry, null_telemetry

log = logging.getLogger(__name__)


class HealthBook:
    def __init__(
        self,
        store: DocumentStore,
        backends: list[str],
        telemetry: Telemetry | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self._store = store
        self._backends = backends
        self._telemetry = telemetry or null_telemetry()
        self._clock = clock

    def snapshot(self, report: bool = True) -> dict[str, Circuit]:
        """Current circuits; if the store cannot be read, assume healthy (fail open). Each
        read is reported as the circuit gauges unless ``report`` is False (the queue's
        drains read them too, and one reading per message is enough)."""
        return self._read(report, ())[0]

    def readings(self) -> tuple[dict[str, Circuit], ObservedBook]:
        """Circuits and every backend's observed model quality, in one batched read (the
        router's and handle_outcome's); unreadable: all closed, nothing observed."""
        return self._read(True, [b for b in self._backends if b != OUTPUT_STORE])

    def _read(self, report: bool, rated: list[str] | tuple) -> tuple[dict, ObservedBook]:
        try:
            circuits, observed = circuit_records.load_with_quality(
                self._store, self._backends, rated
            )
        except Exception as exc:
            log.warning("circuit states unreadable, assuming closed: %s", type(exc).__name__)
            return {}, {}
        now = self._clock()
        for circuit in circuits.values() if report else ():
            self._telemetry.circuit(circuit, now)
        return circuits, observed

    def record_quality(
        self, outcome: RenderOutcome, now: float, seen: Observed | None = None
    ) -> Observed | None:
        """Add a checked output's measured score to its model's record; returns the new
        record, or None when there was nothing to record or the write was skipped or failed.

        ``seen`` is the record as read before: an output that would leave it unchanged (and
        recently written) skips the transaction on this shared document.
        """
        if outcome.qa is None:
            return None
        score = outcome.qa.score
        if seen is not None and seen.unchanged_by(score, now):
            return None

        def body(tx: Transaction) -> Observed:
            models = dict(circuit_records.load_quality(tx, outcome.backend))
            after = models.get(outcome.model, Observed()).record(score, now)
            models[outcome.model] = after
            circuit_records.save_quality(tx, outcome.backend, models)
            return after

        try:
            return self._store.run_transaction(body)
        except Exception as exc:
            log.warning("quality update for %s failed: %s", outcome.backend, type(exc).__name__)
            return None

    def refresh_for_probe(self, tx: Transaction, circuits: dict[str, Circuit], now: float) -> None:
        """Inside a transaction, re-read circuits that would let a probe through now."""
        for backend, circuit in list(circuits.items()):
            if circuit.needs_probe(now):
                circuits[backend] = circuit_records.load(tx, backend)

    def claim_probe(self, tx: Transaction, circuit: Circuit | None, now: float) -> None:
        """If the chosen backend is half-open, this attempt becomes its one probe."""
        if circuit is not None and circuit.needs_probe(now):
            circuit_records.save(tx, circuit.elect_probe(now))

    def record(
        self, outcome: RenderOutcome, now: float, seen: Circuit | None = None
    ) -> tuple[Circuit, Circuit] | None:
        """Apply an outcome to its backend's circuit; returns (before, after) when it moved.

        ``seen`` is the circuit as read before the outcome was applied: a success on a circuit
        already closed with no failures changes nothing, so it skips the transaction on this
        shared document (the common case, and a hot spot otherwise).
        """
        if not counts_against_provider(outcome):
            return None
        return self._move(outcome.backend, outcome.succeeded, outcome.error_code, now, seen)

    def record_output_store(
        self, outcome: RenderOutcome, now: float, seen: Circuit | None = None
    ) -> tuple[Circuit, Circuit] | None:
        """Apply an outcome to our output bucket's circuit: a failure to keep an output on
        our side counts against it; an output kept in the bucket counts for it."""
        if outcome.error_code == ErrorCode.OUTPUT_STORE_UNAVAILABLE:
            return self._move(OUTPUT_STORE, False, outcome.error_code, now, seen)
        if outcome.succeeded and (outcome.output_uri or "").startswith("gs://"):
            return self._move(OUTPUT_STORE, True, None, now, seen)
        return None

    def _move(
        self, name: str, succeeded: bool, code: str | None, now: float, seen: Circuit | None
    ) -> tuple[Circuit, Circuit] | None:
        if succeeded and seen is not None and seen == seen.record_success():
            return None

        def body(tx: Transaction) -> tuple[Circuit, Circuit]:
            before = circuit_records.load(tx, name)
            if succeeded:
                after = before.record_success()
            else:
                after = before.record_failure(now, code or "error")
            if after != before:
                circuit_records.save(tx, after)
            return before, after

        try:
            before, after = self._store.run_transaction(body)
        except Exception as exc:
            log.warning("circuit update for %s failed: %s", name, type(exc).__name__)
            return None
        self._telemetry.circuit(after, now)
        return before, after
