"""A render worker that dies mid-render: its task, redelivered by Pub/Sub within seconds,
resumes polling the stored provider task at once instead of waiting out the lease (issue 10,
fault path 5). Never a second create; one charge."""

from __future__ import annotations

from support.scenarios import attempts
from support.stuck import TEXT

LEASE = 600.0


def test_a_redelivered_task_resumes_the_stored_render_well_inside_the_lease(pipeline, clock):
    # GIVEN a render whose worker stopped after storing the provider task id (here it gave up
    # waiting: RUNNING with its task id, as a killed worker leaves it, its lease ended)
    p = pipeline(
        lease_s=LEASE,
        render_deadline_s=10,
        poll_interval_s=5,
        simulation={"runway": {"latency_s": 15}},
    )
    p.run(TEXT)
    stopped = p.job("t1")
    assert attempts(stopped) == [("runway", "RUNNING")]
    assert stopped["attempts"][0]["provider_task_id"] is not None
    assert stopped["attempts"][0]["error_code"] == "caller_timeout"

    # WHEN Pub/Sub redelivers the render task, as it does for a worker that died
    [task] = p.bus.published["render-runway"]
    p.bus.publish("render-runway", task.data, task.attributes)
    p.drain()

    # THEN the stored task was polled to its end and the job completed within a minute of
    # its start, long before the lease: one create, one charge, one completion
    done = p.job("t1")
    assert attempts(done) == [("runway", "SUCCEEDED")]
    assert done["finished_at"] - done["created_at"] <= 60
    assert len(p.submitted("runway")) == 1
    assert len(p.events("job.completed")) == 1
    p.assert_books_balanced()


def test_a_second_poller_of_the_same_task_reports_nothing(pipeline, clock):
    # GIVEN a stored provider task that has finished, and its task delivered again
    p = pipeline(
        workers=1,
        lease_s=LEASE,
        render_deadline_s=10,
        poll_interval_s=5,
        simulation={"runway": {"latency_s": 15}},
    )
    p.run(TEXT)
    [task] = p.bus.published["render-runway"]
    clock.advance(20)
    renderer, backend = p.app.renderer("runway"), p.app.backend("runway")
    real_poll, nested = backend.poll, []

    def poll_while_another_worker_finishes(task_id, render_task):
        # WHEN, while this worker polls, another delivery of the task polls and reports first
        if not nested:
            nested.append(True)
            renderer.handle(task.data, task.attributes)
        return real_poll(task_id, render_task)

    backend.poll = poll_while_another_worker_finishes
    before = len(p.bus.published["render-outcomes"])
    renderer.handle(task.data, task.attributes)
    p.drain()

    # THEN only the first reporter published the outcome; the job completed once, charged once
    assert len(p.bus.published["render-outcomes"]) == before + 1
    assert attempts(p.job("t1")) == [("runway", "SUCCEEDED")]
    assert len(p.submitted("runway")) == 1
    assert len(p.events("job.completed")) == 1
    p.assert_books_balanced()
