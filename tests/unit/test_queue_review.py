"""Review of the render queue (issue 11, first part): render slots and the durable queue.

Each test is a finding a reviewer wrote as a strict xfail (each failing for its stated
reason first), and holds since its fix."""

from __future__ import annotations

from aiprod.domain.catalog import default_catalog
from aiprod.domain.policy import RetryPolicy
from aiprod.services.capacity_admin import set_capacity
from support.scenarios import runway_job
from support.stuck import sweep


def _corrupt(p, job_id: str) -> None:
    """The job document no longer decodes (schema drift, a bad manual edit): the case the
    reconciler's ``unreadable`` handling exists for. Its top-level fields stay as saved."""

    def body(tx):
        doc = tx.get("jobs", job_id)
        tx.set("jobs", job_id, {**doc, "status": "NOT_A_STATUS"})

    p.store.run_transaction(body)


def test_an_unreadable_queued_job_does_not_block_the_jobs_behind_it(pipeline, clock):
    # GIVEN runway limited to 1 render at a time, q1 rendering slowly, q2 and q3 queued
    # behind it, and q2's document then becoming unreadable
    p = pipeline(
        simulation={"runway": {"latency_s": 1_000}},
        render_deadline_s=5,
        lease_s=60,
        retry=RetryPolicy(max_wall_s=100_000),
    )
    set_capacity(p.store, default_catalog(), "runway", 1)
    for i in (1, 2, 3):  # one at a time: q1 takes the slot, then q2 and q3 queue in order
        p.run(runway_job(i))
        clock.advance(1)
    assert p.job("q2")["attempts"][0]["state"] == "QUEUED"
    assert p.job("q3")["attempts"][0]["state"] == "QUEUED"
    _corrupt(p, "q2")

    # WHEN q1's render finishes and the reconciler sweeps (twice: the second after it has
    # had its chance to set the bad document aside)
    clock.advance(1_100)
    sweep(p)
    assert p.job("q1")["status"] == "SUCCEEDED"
    sweep(p)

    # THEN the free runway slot went to q3, the next readable job in the queue
    assert p.job("q3")["attempts"][0]["state"] != "QUEUED"
    assert len(p.submitted("runway")) == 2


def test_a_wall_time_close_of_a_running_render_does_not_free_its_slot_while_it_renders(
    pipeline, clock
):
    # GIVEN runway limited to 1 render at a time, q1 rendering a task that outlasts its wall
    # time (60 s), and q2 queued behind it, admitted later so its own wall time has not run
    p = pipeline(
        simulation={"runway": {"latency_s": 10_000}},
        render_deadline_s=5,
        lease_s=30,
        retry=RetryPolicy(max_wall_s=60),
    )
    set_capacity(p.store, default_catalog(), "runway", 1)
    p.run(runway_job(1))
    clock.advance(40)
    p.run(runway_job(2))
    assert p.job("q2")["attempts"][0]["state"] == "QUEUED"

    # WHEN q1 passes its wall time and the reconciler sweeps (q1's provider task still has
    # thousands of seconds to go)
    clock.advance(30)
    sweep(p)

    # THEN q1 failed for its wall time, but runway still renders its task, so q2 has not been
    # sent to runway yet: one render at a time
    assert (p.job("q1")["status"], p.job("q1")["reason"]) == ("FAILED", "wall_time_exceeded")
    assert len(p.submitted("runway")) == 1
