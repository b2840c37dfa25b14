"""The outbox: the one place that publishes, after a commit, the effects it returned.

Services never call the bus for their own messages: a transaction body returns its effects
(``domain.effects``) and the handler hands them here once the commit succeeded. A publish
that fails raises (the invocation fails, Pub/Sub redelivers, and the redelivery finds the
same effects still owed by the committed state). Each effect kind has its sender in a table.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from aiprod import topology
from aiprod.domain.effects import DeadLetter, Effect, PublishEvent, PublishOutcome, PublishTask
from aiprod.exceptions import TransientError
from aiprod.ports import Bus, DocumentStore
from aiprod.repositories import jobs

log = logging.getLogger(__name__)


class Outbox:
    def __init__(self, bus: Bus, store: DocumentStore):
        self._bus, self._store = bus, store
        self._senders: dict[type, Callable] = {
            PublishTask: self._task,
            PublishOutcome: self._outcome,
            PublishEvent: self._event,
            DeadLetter: self._dead_letter,
        }

    def send(self, effects: Iterable[Effect]) -> None:
        """Publish each effect, in order; the first failure propagates."""
        for effect in effects:
            self._senders[type(effect)](effect)

    def _task(self, effect: PublishTask) -> None:
        task = effect.task
        attrs = {"job_id": task.job_id, "attempt": str(task.attempt), "backend": task.backend}
        self._bus.publish(
            topology.render_topic(task.backend), task.model_dump_json().encode(), attrs
        )

    def _outcome(self, effect: PublishOutcome) -> None:
        outcome = effect.outcome
        attrs = {"job_id": outcome.job_id, "attempt": str(outcome.attempt)}
        self._bus.publish(topology.RENDER_OUTCOMES, outcome.model_dump_json().encode(), attrs)

    def _event(self, effect: PublishEvent) -> None:
        event = effect.event
        self._bus.publish(topology.JOB_EVENTS, event.model_dump_json().encode(), event.attributes())
        if effect.final:
            self._note(jobs.note_announced, event)
        elif effect.admission:
            self._note(jobs.note_accepted, event)

    def _dead_letter(self, effect: DeadLetter) -> None:
        attrs = {"reason": effect.reason, "source": effect.source}
        self._bus.publish(topology.DEAD_LETTER, effect.data, attrs)

    def _note(self, note: Callable[[DocumentStore, str], None], event) -> None:
        """Note on the job that its final (or admission) event is out, so a redelivered
        message does not publish it again. Failing to note only risks that repeat (events
        are at least once), so it is logged and the invocation still succeeds."""
        try:
            note(self._store, event.job_id)
        except TransientError as exc:
            kind, job_id = event.type.value, event.job_id
            log.warning("could not note %s as published: %s", kind, exc, extra={"job_id": job_id})
