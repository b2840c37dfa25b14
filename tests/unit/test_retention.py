"""Retention: what gets ``expire_at`` (the field Firestore's TTL policies delete on), and when.

Finished jobs at their end plus the job retention, never a running one; a budget day's pool
and shards at the day's end plus the ledger retention; dead letters when first seen plus the
job retention. And the promise the README makes: a job's ``job_id`` is recognized for the
whole retention; once its record is gone, the same ``job_id`` is a new job.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aiprod import topology
from aiprod.adapters.embedded_bus import EmbeddedBus
from aiprod.adapters.embedded_store import EmbeddedStore
from aiprod.config import Settings
from aiprod.domain.jobs import JobStatus, new_job
from aiprod.domain.retention import DAY_S, Retention, day_expiry
from aiprod.ports import EXPIRE_AT
from aiprod.repositories import jobs as job_records
from aiprod.repositories.dead_letters import COLLECTION as DEAD_LETTERS
from aiprod.repositories.ledger import POOLS, SHARDS
from aiprod.services.dead_letters import DeadLetters
from support.scenarios import TEXT

KEEP = Retention(job_s=7 * DAY_S, ledger_s=90 * DAY_S)


def test_a_running_job_never_expires_and_an_ended_one_does_after_its_retention():
    running = new_job({"job_id": "j"}, "h", None, 100.0, status=JobStatus.RUNNING, keep_s=60.0)
    assert running.expire_at is None
    assert job_records.encode(running)[EXPIRE_AT] is None
    for status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.REJECTED):
        ended = running.model_copy(update={"status": status, "finished_at": 500.0})
        assert job_records.encode(ended)[EXPIRE_AT] == 560.0, status
        assert job_records.decode(job_records.encode(ended)) == ended  # the field is derived


def test_an_ended_job_with_a_late_task_still_polled_does_not_expire_until_it_is_settled():
    job = new_job({"job_id": "j"}, "h", None, 0.0, status=JobStatus.FAILED, keep_s=60.0)
    polled = job.model_copy(update={"finished_at": 10.0, "attempts": []})
    assert polled.expire_at == 70.0
    with_late = polled.model_copy(update={"attempts": [_attempt(late_task_lease=99.0)]})
    assert with_late.late_task_due_at == 99.0 and with_late.expire_at is None


def test_a_job_stored_before_retention_existed_is_kept_for_good():
    old = new_job({"job_id": "j"}, "h", None, 0.0, status=JobStatus.SUCCEEDED, finished_at=5.0)
    assert old.keep_s is None and old.expire_at is None


def test_a_budget_day_expires_its_retention_after_it_ended_in_every_time_zone():
    # 2026-11-23 ends last at 2026-11-24T12:00Z (UTC-12)
    end = datetime(2026, 11, 24, 12, tzinfo=UTC).timestamp()
    assert day_expiry("2026-11-23", 3600.0) == end + 3600.0


def test_a_finished_job_and_its_ledger_day_carry_their_expiry(pipeline):
    # GIVEN a pipeline configured with its own retention
    p = pipeline(retention=KEEP)

    # WHEN a text job is rendered to the end
    p.run(TEXT)

    # THEN the job expires its job retention after it finished
    job = p.job("t1")
    assert job["status"] == "SUCCEEDED"
    assert job[EXPIRE_AT] == job["finished_at"] + KEEP.job_s
    # AND every pool and shard of the day its ledger retention after the day's end
    day = p.day()
    docs = p.store.list(POOLS) + p.store.list(SHARDS)
    assert docs and {d[EXPIRE_AT] for d in docs} == {day_expiry(day, KEEP.ledger_s)}


def test_an_invalid_job_is_kept_for_the_retention_too(pipeline):
    p = pipeline(retention=KEEP)
    p.run({"job_id": "bad-1", "prompt": "x", "duration_s": -3})
    job = p.job("bad-1")
    assert job["status"] == "REJECTED"
    assert job[EXPIRE_AT] == job["finished_at"] + KEEP.job_s


def test_a_job_id_is_recognized_within_retention_and_new_again_once_its_record_expired(
    pipeline, clock
):
    # GIVEN a finished job
    p = pipeline(retention=KEEP)
    p.run(TEXT)
    first = p.job("t1")

    # WHEN its message is sent again within the retention
    clock.advance(KEEP.job_s - 60)
    p.run(TEXT)

    # THEN it is recognized: nothing is rendered or charged again
    assert p.job("t1") == first
    assert len(p.submitted("runway")) == 1

    # WHEN the store's TTL has deleted the record, and the message comes once more
    p.store._docs["jobs"].pop("t1")  # what a TTL deletion does (the port has no delete)
    p.run(TEXT)

    # THEN the same job_id is accepted as a new job (and rendered again)
    assert p.job("t1")["created_at"] > first["created_at"]
    assert len(p.submitted("runway")) == 2


@pytest.fixture
def bus():
    bus = EmbeddedBus(workers=1)
    yield bus
    bus.close()


def test_a_dead_letter_expires_its_retention_after_it_was_first_seen(bus, clock):
    store = EmbeddedStore()
    inbox = DeadLetters(store, bus, "aiprod-", clock, KEEP.job_s)
    bus.publish(topology.DEAD_LETTER, b"not json", {"reason": "invalid", "source": "jobs"})
    (letter,) = inbox.collect()
    assert store.get(DEAD_LETTERS, letter.id)[EXPIRE_AT] == clock() + KEEP.job_s
    inbox.replay([letter.id])  # a replay keeps the expiry
    assert store.get(DEAD_LETTERS, letter.id)[EXPIRE_AT] == clock() + KEEP.job_s


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, Retention(30 * DAY_S, 400 * DAY_S)),
        (
            {"AIPROD_RETENTION_DAYS": "2", "AIPROD_LEDGER_RETENTION_DAYS": "0.5"},
            Retention(2 * DAY_S, DAY_S / 2),
        ),
    ],
)
def test_retention_settings(env, expected):
    assert Settings.from_env(env).retention == expected


def test_a_retention_of_zero_is_refused_at_start_up():
    with pytest.raises(ValueError, match="AIPROD_RETENTION_DAYS"):
        Settings.from_env({"AIPROD_RETENTION_DAYS": "0"})


def _attempt(**fields):
    from aiprod.domain.jobs import Attempt

    base = dict(number=1, backend="runway", model="gen4.5", hold_micros=1, ledger_keys=[])
    return Attempt(**base, dispatched_at=0.0, state="FAILED", **fields)
