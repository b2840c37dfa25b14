"""The render queue (issue 11): a job that finds no free render slot on its backend waits,
funded (its hold taken at admission), and is dispatched as slots free, oldest first; the
slots in use never pass the backend's capacity, and every slot taken is given back."""

from __future__ import annotations

import pytest

from aiprod.domain.catalog import default_catalog
from aiprod.domain.policy import RetryPolicy
from aiprod.repositories import slots as slot_records
from aiprod.services.capacity_admin import set_capacity
from support.scenarios import runway_job
from support.stuck import sweep


@pytest.fixture
def watched_slots(monkeypatch):
    """The most runway slots ever held at once (summed over shards as each one is saved)."""
    shards: dict[str, int] = {}
    peak = {"runway": 0}
    save = slot_records.save

    def watching(tx, shard):
        save(tx, shard)
        shards[shard.key] = shard.in_use
        total = sum(n for key, n in shards.items() if key.startswith(f"{shard.backend}#"))
        peak[shard.backend] = max(peak.get(shard.backend, 0), total)

    monkeypatch.setattr(slot_records, "save", watching)
    return peak


def test_a_burst_past_capacity_waits_and_runs_as_slots_free(pipeline, watched_slots):
    # GIVEN runway limited to 2 renders at a time, each render taking 10 s
    # (one worker: the 6 job messages are all admitted before any render runs)
    p = pipeline(workers=1, simulation={"runway": {"latency_s": 10}}, render_deadline_s=60)
    set_capacity(p.store, default_catalog(), "runway", 2)

    # WHEN 6 jobs pinned to runway arrive at once
    p.run(*[runway_job(i) for i in range(6)])

    # THEN every job succeeded on runway, four of them after waiting (job.queued), never
    # more than 2 renders at once, each render created once, and every slot given back
    assert {j["job_id"]: j["status"] for j in p.jobs()} == {f"q{i}": "SUCCEEDED" for i in range(6)}
    assert len(p.events("job.queued")) == 4
    assert watched_slots["runway"] == 2
    assert len(p.submitted("runway")) == 6
    assert slot_records.in_use(p.store, "runway") == 0
    queued = [j for j in p.jobs() if j["attempts"][0].get("queued_at") is not None]
    assert len(queued) == 4 and all(len(j["attempts"]) == 1 for j in queued)  # no fallback
    p.assert_books_balanced()


def test_a_queued_job_is_funded_and_a_full_queue_never_overspends(pipeline):
    # GIVEN runway limited to 1 render at a time and its renders slow (the first never ends
    # within this test), so the second job waits
    p = pipeline(simulation={"runway": {"latency_s": 10_000}}, render_deadline_s=5)
    set_capacity(p.store, default_catalog(), "runway", 1)

    p.run(runway_job(1), runway_job(2))

    # THEN the waiting job holds its budget already (admitted means funded), has no lease
    # (time in the queue is not a lost worker), and nothing was sent for it
    waiting = p.job("q2")
    [attempt] = waiting["attempts"]
    assert (attempt["state"], attempt["lease_expires_at"]) == ("QUEUED", None)
    assert p.ledger()["held_micros"] == 2 * attempt["hold_micros"]
    assert len(p.submitted("runway")) == 1


def test_a_job_that_waits_past_its_wall_time_fails_and_gives_its_hold_back(pipeline, clock):
    # GIVEN runway limited to 1 render at a time, a render that outlasts the wall time, and a
    # second job waiting behind it
    p = pipeline(
        simulation={"runway": {"latency_s": 10_000}},
        render_deadline_s=5,
        retry=RetryPolicy(max_wall_s=60),
    )
    set_capacity(p.store, default_catalog(), "runway", 1)
    p.run(runway_job(1), runway_job(2))

    # WHEN its wall time passes and the reconciler sweeps
    clock.advance(120)
    sweep(p)

    # THEN the waiting job failed for its wall time, never rendered, its hold released
    waiting = p.job("q2")
    assert (waiting["status"], waiting["reason"]) == ("FAILED", "wall_time_exceeded")
    assert waiting["attempts"][0]["cost_micros"] == 0
    assert len(p.submitted("runway")) == 1
    p.assert_books_balanced()


def test_the_reconciler_starts_a_queued_job_a_lost_drain_left_waiting(pipeline, monkeypatch):
    # GIVEN runway limited to 1, and the drain after a render's outcome failing once
    p = pipeline(simulation={"runway": {"latency_s": 1}}, render_deadline_s=30)
    set_capacity(p.store, default_catalog(), "runway", 1)
    queue = p.app.queue
    drain, failures = queue.drain, []

    def lost_once(backend, most=20):
        if not failures:
            failures.append(backend)
            raise RuntimeError("instance lost before draining")
        return drain(backend, most)

    monkeypatch.setattr(queue, "drain", lost_once)
    p.run(runway_job(1), runway_job(2))
    assert p.job("q2")["attempts"][0]["state"] == "QUEUED"

    # WHEN the reconciler sweeps
    report = sweep(p)

    # THEN it started the waiting job, which completed
    assert report["dequeued"] == 1
    assert p.job("q2")["status"] == "SUCCEEDED"
    p.assert_books_balanced()
