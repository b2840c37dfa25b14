"""``aiprod dlq list|replay`` on the embedded bus and store: keep what is pulled, replay it.

Dead letters arrive as they do in production: our functions publish to the dead-letter topic
with ``reason``/``source``; Pub/Sub (here the embedded bus, or hand-made attributes as the
real service sets them) after five failed deliveries.
"""

from __future__ import annotations

import json

import pytest

from aiprod import topology
from aiprod.adapters.embedded_bus import EmbeddedBus
from aiprod.adapters.embedded_store import EmbeddedStore
from aiprod.bootstrap import App
from aiprod.config import Settings
from aiprod.domain.dead_letters import MAX_KEPT_BYTES, DeadLetter, source_of
from aiprod.exceptions import (
    DeadLetterNotFoundError,
    DeadLetterReplayError,
    StoreUnavailableError,
)
from aiprod.ports import ReceivedMessage
from aiprod.repositories.dead_letters import COLLECTION as DEAD_LETTERS
from aiprod.services.dead_letters import INBOX, DeadLetters
from aiprod_tools import cli
from aiprod_tools.cli import context

JOB = {"job_id": "late-1", "prompt": "a red kite over green hills"}
PUBSUB_DEAD = {
    "CloudPubSubDeadLetterSourceSubscription": "aiprod-jobs--route_job",
    "CloudPubSubDeadLetterSourceSubscriptionProject": "p",
    "CloudPubSubDeadLetterSourceDeliveryCount": "5",
    "CloudPubSubDeadLetterSourceTopicPublishTime": "2027-01-15T08:00:00Z",
    "team": "growth",
}


@pytest.fixture
def bus():
    bus = EmbeddedBus(workers=1)
    yield bus
    bus.close()


@pytest.fixture
def store() -> EmbeddedStore:
    return EmbeddedStore()


@pytest.fixture
def inbox(store, bus, clock) -> DeadLetters:
    return DeadLetters(store, bus, "aiprod-", clock)


@pytest.fixture
def aiprod(store, bus, clock, monkeypatch, capsys):
    app = App(Settings(), store=store, bus=bus, clock=clock)
    monkeypatch.setattr(context, "make_app", lambda: app)

    def run(*argv: str) -> tuple[int, str, str]:
        code = cli.main(list(argv))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def received(data: bytes, attributes: dict[str, str], message_id: str = "7") -> ReceivedMessage:
    return ReceivedMessage(data, attributes, message_id)


# -- describing a dead letter (pure) ------------------------------------------------------------


def test_a_letter_from_our_functions_names_its_reason_and_source():
    attrs = {"reason": "invalid", "source": "render-outcomes"}
    letter = DeadLetter.received(received(b"{oops", attrs), "aiprod-", 10.0)
    assert (letter.source, letter.reason, letter.delivery_count) == (
        "render-outcomes",
        "invalid",
        None,
    )
    assert (letter.first_seen_at, letter.replayed, letter.original_attributes()) == (
        10.0,
        False,
        {},
    )


def test_a_letter_from_pubsub_takes_its_source_from_the_subscription():
    letter = DeadLetter.received(received(json.dumps(JOB).encode(), PUBSUB_DEAD), "aiprod-", 0)
    assert (letter.source, letter.delivery_count) == ("jobs", 5)
    assert letter.reason == "5 failed deliveries on aiprod-jobs--route_job"
    assert letter.original_attributes() == {"team": "growth"}


@pytest.mark.parametrize(
    ("subscription", "source"),
    [
        ("projects/p/subscriptions/aiprod-render-veo--render_veo", "render-veo"),
        ("aiprod-render-outcomes--handle_outcome", "render-outcomes"),
        ("someone-elses-subscription", None),
        ("other-jobs--route_job", None),  # another deployment's prefix
    ],
)
def test_source_from_a_subscription_name(subscription, source):
    attrs = {"CloudPubSubDeadLetterSourceSubscription": subscription}
    assert source_of(attrs, "aiprod-") == source


def test_text_is_stored_as_text_and_bytes_as_base64():
    text = DeadLetter.received(received("café".encode(), {}), "", 0)
    binary = DeadLetter.received(received(b"\xff\x00\x01", {}), "", 0)
    assert (text.to_doc()["data"], text.to_doc()["encoding"]) == ("café", "utf-8")
    assert (binary.to_doc()["data"], binary.to_doc()["encoding"]) == ("/wAB", "base64")
    assert DeadLetter.from_doc(text.to_doc()) == text
    assert DeadLetter.from_doc(binary.to_doc()) == binary
    assert binary.preview() == "<3 bytes, binary>"
    assert DeadLetter.received(received(b"x" * 100, {}), "", 0).preview(10) == "x" * 9 + "…"


# -- collecting the inbox -----------------------------------------------------------------------


def test_collect_keeps_every_pulled_message_and_lists_them_oldest_first(inbox, bus, clock, store):
    # GIVEN two dead letters, a minute apart
    bus.publish(topology.DEAD_LETTER, b"not json", {"reason": "invalid", "source": "jobs"})
    first = inbox.collect()
    clock.advance(60)
    bus.publish(topology.DEAD_LETTER, json.dumps(JOB).encode(), PUBSUB_DEAD)

    # WHEN collected again
    second = inbox.collect()

    # THEN both are stored (the inbox is empty) and listed in arrival order
    assert len(first) == len(second) == 1
    assert bus.pull(INBOX) == []
    pending = inbox.pending()
    assert [x.reason for x in pending] == [
        "invalid",
        "5 failed deliveries on aiprod-jobs--route_job",
    ]
    assert [x.first_seen_at for x in pending] == [clock.start, clock.start + 60]
    assert store.get(DEAD_LETTERS, pending[1].id)["data"] == json.dumps(JOB)


def test_collect_takes_at_most_max_and_leaves_the_rest(inbox, bus):
    for n in range(5):
        bus.publish(topology.DEAD_LETTER, f"m{n}".encode(), {"source": "jobs"})
    assert len(inbox.collect(max_messages=3)) == 3
    assert len(bus.pull(INBOX)) == 2


class _Redelivering(EmbeddedBus):
    """A bus whose pull hands out the same message twice (Pub/Sub is at least once)."""

    def pull(self, subscription, max_messages=100):
        got = super().pull(subscription, max_messages)
        return got + got


def test_a_message_pulled_twice_is_kept_once_with_its_first_sighting(store, clock):
    bus = _Redelivering(workers=1)
    inbox = DeadLetters(store, bus, "aiprod-", clock)
    bus.publish(topology.DEAD_LETTER, b"x", {"source": "jobs"})
    assert len(inbox.collect()) == 1
    assert len(store.list(DEAD_LETTERS)) == 1
    bus.close()


class _FailingStore(EmbeddedStore):
    def __init__(self, fail_after: int):
        super().__init__()
        self.left = fail_after

    def run_transaction(self, body):
        if self.left == 0:
            raise StoreUnavailableError("store down (injected)")
        self.left -= 1
        return super().run_transaction(body)


def test_a_store_outage_while_collecting_puts_the_unkept_back_in_the_inbox(bus, clock):
    # GIVEN three dead letters and a store that fails after keeping one
    store = _FailingStore(fail_after=1)
    for n in range(3):
        bus.publish(topology.DEAD_LETTER, f"m{n}".encode(), {"source": "jobs", "reason": "r"})

    # WHEN collected THEN the outage surfaces, and nothing pulled is lost
    with pytest.raises(StoreUnavailableError):
        DeadLetters(store, bus, "aiprod-", clock).collect()
    assert [x["data"] for x in store.list(DEAD_LETTERS)] == ["m0"]
    back = bus.pull(INBOX)
    assert [(m.data, m.attributes) for m in back] == [
        (b"m1", {"source": "jobs", "reason": "r"}),
        (b"m2", {"source": "jobs", "reason": "r"}),
    ]


# -- replay -------------------------------------------------------------------------------------


def test_a_replayed_job_reaches_the_router(pipeline, clock):
    # GIVEN a job request dead-lettered after five failed deliveries (the ledger was down)
    p = pipeline(workers=1)
    p.store.unavailable.add("ledger")
    p.run({"job_id": "t1", "prompt": "a paper boat"})
    assert p.jobs() == []
    p.store.unavailable.clear()
    inbox = DeadLetters(p.store, p.bus, p.app.settings.prefix, clock)

    # WHEN the operator lists the inbox and replays it
    [letter] = inbox.collect()
    assert (letter.source, letter.delivery_count) == ("jobs", 5)
    [(_, message_id)] = inbox.replay([letter.id])
    p.drain()

    # THEN the job was routed and rendered, with the request's own attributes only
    assert p.job("t1")["status"] == "SUCCEEDED"
    republished = p.bus.published["jobs"][-1]
    assert republished.message_id == message_id and republished.attributes == {}
    assert json.loads(republished.data) == {"job_id": "t1", "prompt": "a paper boat"}
    # AND the letter is marked replayed, and no longer pending
    doc = p.store.get(DEAD_LETTERS, letter.id)
    assert (doc["replayed"], doc["replayed_at"], doc["replay_message_id"]) == (
        True,
        clock.now,
        message_id,
    )
    assert inbox.pending() == []
    p.assert_books_balanced()


def test_replay_restores_the_original_attributes(inbox, bus):
    bus.publish(topology.DEAD_LETTER, json.dumps(JOB).encode(), PUBSUB_DEAD)
    [letter] = inbox.collect()
    inbox.replay([letter.id])
    [message] = bus.published["jobs"]
    assert message.attributes == {"team": "growth"}


def test_replay_checks_every_id_before_publishing_any(inbox, bus):
    bus.publish(topology.DEAD_LETTER, b"a", {"source": "jobs"})
    [letter] = inbox.collect()
    with pytest.raises(DeadLetterNotFoundError, match="no stored dead letter with id 404"):
        inbox.replay([letter.id, "404"])
    assert bus.published["jobs"] == []


def test_a_letter_is_replayed_once(inbox, bus):
    bus.publish(topology.DEAD_LETTER, b"a", {"source": "jobs"})
    [letter] = inbox.collect()
    inbox.replay([letter.id, letter.id])  # named twice: published once
    with pytest.raises(DeadLetterReplayError, match="already replayed"):
        inbox.replay([letter.id])
    assert len(bus.published["jobs"]) == 1


def test_a_letter_without_a_known_source_is_not_replayed(inbox, bus):
    bus.publish(topology.DEAD_LETTER, b"a", {"CloudPubSubDeadLetterSourceDeliveryCount": "5"})
    [letter] = inbox.collect()
    assert (letter.source, letter.reason) == (None, "5 failed deliveries")
    with pytest.raises(DeadLetterReplayError, match="no known source topic"):
        inbox.replay([letter.id])


def test_an_oversized_letter_keeps_its_head_and_is_not_replayed(inbox, bus, store):
    # GIVEN 2 MB of garbage dead-lettered from the jobs topic (a document holds 1 MiB)
    bus.publish(topology.DEAD_LETTER, b"x" * 2_000_000, {"source": "jobs", "reason": "invalid"})

    # WHEN collected THEN its head is kept with its real size, and a replay is refused
    [letter] = inbox.collect()
    doc = store.get(DEAD_LETTERS, letter.id)
    assert (len(doc["data"]), doc["size"], doc["truncated"]) == (MAX_KEPT_BYTES, 2_000_000, True)
    with pytest.raises(DeadLetterReplayError, match="too large to keep whole"):
        inbox.replay([letter.id])


def test_replay_all_of_one_source(inbox, bus):
    bus.publish(topology.DEAD_LETTER, b"j1", {"source": "jobs"})
    bus.publish(topology.DEAD_LETTER, b"o1", {"source": "render-outcomes", "reason": "invalid"})
    bus.publish(topology.DEAD_LETTER, b"j2", {"source": "jobs"})
    inbox.collect()
    assert [x.data for x, _ in inbox.replay_pending("jobs")] == [b"j1", b"j2"]
    assert [x.data for x in inbox.pending()] == [b"o1"]
    assert [m.data for m in bus.published["jobs"]] == [b"j1", b"j2"]
    with pytest.raises(DeadLetterReplayError, match="not a topic"):
        inbox.replay_pending("nope")


# -- the commands -------------------------------------------------------------------------------


def test_dlq_list_prints_the_pending_letters(aiprod, bus, clock):
    bus.publish(topology.DEAD_LETTER, b"not json", {"reason": "invalid", "source": "jobs"})
    bus.publish(topology.DEAD_LETTER, json.dumps(JOB).encode(), PUBSUB_DEAD)
    clock.advance(7200)

    code, out, _ = aiprod("dlq", "list")

    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "pulled 2 new from the inbox; 2 stored, not yet replayed"
    assert lines[2].split() == ["id", "source", "reason", "deliveries", "age", "bytes", "preview"]
    assert lines[4].split()[1:] == ["jobs", "invalid", "-", "0s", "8", "not", "json"]
    assert "5 failed deliveries on aiprod-jobs--route_job" in lines[5]
    assert '{"job_id": "late-1", "prompt": "a red k…' in lines[5]
    code, out, _ = aiprod("dlq", "list", "--json")
    listed = json.loads(out)
    assert listed["collected"] == 0
    assert [(x["source"], x["age_s"]) for x in listed["pending"]] == [("jobs", 0.0)] * 2


def test_dlq_replay_by_id_all_and_source(aiprod, bus, inbox):
    bus.publish(topology.DEAD_LETTER, b"j1", {"source": "jobs"})
    bus.publish(topology.DEAD_LETTER, b"o1", {"source": "render-outcomes"})
    aiprod("dlq", "list")
    ids = [x.id for x in inbox.pending()]

    code, out, _ = aiprod("dlq", "replay", "--all", "--source", "aiprod-jobs")
    assert code == 0 and out.startswith(f"replayed {ids[0]} to aiprod-jobs as message ")
    code, out, _ = aiprod("dlq", "replay", ids[1])
    assert code == 0 and f"replayed {ids[1]} to aiprod-render-outcomes" in out
    code, out, _ = aiprod("dlq", "replay", "--all")
    assert (code, out) == (0, "nothing to replay\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["replay", "404"], "no stored dead letter with id 404"),
        (["replay"], "or pass --all"),
        (["replay", "1", "--all"], "not both"),
        (["replay", "1", "--source", "jobs"], "--source selects among --all"),
        (["replay", "--all", "--source", "nope"], "not a topic"),
        (["list", "--max", "0"], "--max must be at least 1"),
    ],
)
def test_dlq_refuses_bad_input(aiprod, argv, message):
    code, out, err = aiprod("dlq", *argv)
    assert (code, out) == (1, "")
    assert message in err
