"""The dead-letter inbox (``aiprod dlq``): keep what was pulled, list it, replay it.

``Bus.pull`` acknowledges what it returns, so every pulled message is kept at once
(``repositories.dead_letters``, created if absent: a message pulled twice keeps its first-seen
time and its replayed flag). Should storing fail, the messages not yet stored are published
back to the dead-letter topic before the error propagates, so a pull never loses one.

A replay publishes the stored data to the source topic with the original attributes (those
Pub/Sub and our functions added on the way to the dead letter are dropped), then marks the
letter replayed. A crash between the two replays it again next time: the pipeline is
idempotent on ``job_id`` and attempt, so a repeat is harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

from aiprod import topology
from aiprod.domain.dead_letters import DeadLetter
from aiprod.domain.retention import Retention
from aiprod.exceptions import DeadLetterNotFoundError, DeadLetterReplayError
from aiprod.ports import Bus, DocumentStore, ReceivedMessage
from aiprod.repositories import dead_letters as letters_kept

INBOX = f"{topology.DEAD_LETTER}--inbox"
PULL_BATCH = 100
EMPTY_PULLS = 2  # a pull that returns at once may come back empty while messages wait
MAX_LIST = 10_000


class DeadLetters:
    def __init__(
        self,
        store: DocumentStore,
        bus: Bus,
        prefix: str,
        clock: Callable[[], float] = time.time,
        keep_s: float = Retention().job_s,  # a letter is deleted this long after it was seen
    ):
        self._store, self._bus, self._prefix, self._clock = store, bus, prefix, clock
        self._keep_s = keep_s

    def collect(self, max_messages: int = 1000) -> list[DeadLetter]:
        """Pull up to ``max_messages`` from the inbox and store each; returns the new ones."""
        kept: list[DeadLetter] = []
        pulled = empty = 0
        while pulled < max_messages and empty < EMPTY_PULLS:
            batch = self._bus.pull(INBOX, min(PULL_BATCH, max_messages - pulled))
            pulled += len(batch)
            empty = 0 if batch else empty + 1
            kept += self._keep_all(batch)
        return kept

    def pending(self, source: str | None = None) -> list[DeadLetter]:
        """Stored letters not yet replayed (of one source topic, when given), oldest first."""
        letters = letters_kept.not_replayed(self._store, MAX_LIST)
        return [x for x in letters if source is None or x.source == source]

    def replay(self, ids: list[str]) -> list[tuple[DeadLetter, str]]:
        """Republish the named letters to their source topics; all are checked first."""
        found = letters_kept.load_many(self._store, ids)
        missing = [i for i in ids if i not in found]
        if missing:
            raise DeadLetterNotFoundError(f"no stored dead letter with id {', '.join(missing)}")
        letters = [found[i] for i in dict.fromkeys(ids)]
        for letter in letters:
            _check_replayable(letter)
        return [(letter, self._replay_one(letter)) for letter in letters]

    def replay_pending(self, source: str | None = None) -> list[tuple[DeadLetter, str]]:
        """Replay every stored letter not yet replayed (of one source topic, when given)."""
        if source is not None and not topology.is_topic(source):
            raise DeadLetterReplayError(f"{source!r} is not a topic of the topology")
        letters = self.pending(source)
        return self.replay([x.id for x in letters]) if letters else []

    def _keep_all(self, batch: list[ReceivedMessage]) -> list[DeadLetter]:
        kept: list[DeadLetter] = []
        for position, message in enumerate(batch):
            letter = DeadLetter.received(message, self._prefix, self._clock())
            if letter.source is not None:  # a push lane's letter belongs to its topic
                letter = replace(letter, source=topology.base_topic(letter.source))
            try:
                if letters_kept.create(self._store, letter, self._keep_s):
                    kept.append(letter)
            except BaseException:  # an outage, or Ctrl-C: what was pulled goes back
                for unkept in batch[position:]:
                    self._bus.publish(topology.DEAD_LETTER, unkept.data, unkept.attributes)
                raise
        return kept

    def _replay_one(self, letter: DeadLetter) -> str:
        message_id = self._bus.publish(letter.source, letter.data, letter.original_attributes())
        letters_kept.mark_replayed(self._store, letter, message_id, self._clock())
        return message_id


def _check_replayable(letter: DeadLetter) -> None:
    if letter.replayed:
        raise DeadLetterReplayError(
            f"dead letter {letter.id} was already replayed (as message "
            f"{letter.replay_message_id}); if it failed again it is a new dead letter"
        )
    if letter.truncated:
        raise DeadLetterReplayError(
            f"dead letter {letter.id} was too large to keep whole ({letter.size} bytes)"
        )
    if letter.source is None or not topology.is_topic(letter.source):
        raise DeadLetterReplayError(f"dead letter {letter.id} has no known source topic")
    if letter.source == topology.DEAD_LETTER:
        raise DeadLetterReplayError(f"dead letter {letter.id} came from the dead-letter topic")
