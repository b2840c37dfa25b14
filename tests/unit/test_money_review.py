"""Review of the submit-protocol change (submit intent, late tasks, adoption, unkept
outputs, ledger corrections): each test is a money bug a reviewer found in it (written as
a strict xfail first, each failing for its stated reason), and holds since its fix."""

from __future__ import annotations

from aiprod.domain.policy import RetryPolicy
from aiprod.domain.spend_audit import ProviderTask
from support.stuck import LEASE, TEXT, only, slow_runway, sweep


def _wall_time_late_task(pipeline, clock):
    """A runway render that takes 1000 s in a job with a 30 s wall time: the reconciler
    closes it wall_time_exceeded charging 0 and keeps its task as a late task."""
    p = pipeline(**slow_runway(1000, retry=RetryPolicy(max_wall_s=30)))
    p.run(TEXT)
    clock.advance(25)  # past the wall time; the render function stopped watching at 10 s
    assert sweep(p) == only(overdue=1)
    job = p.job("t1")
    assert (job["status"], job["reason"]) == ("FAILED", "wall_time_exceeded")
    [attempt] = job["attempts"]
    assert attempt["cost_micros"] == 0 and attempt["late_task_lease"] is not None
    return p, attempt


def test_late_task_of_a_wall_time_close_is_charged_without_a_phantom_overrun(pipeline, clock):
    # GIVEN a job closed at its wall time (charging 0) whose runway task is kept late
    p, _ = _wall_time_late_task(pipeline, clock)

    # WHEN the task finishes and the reconciler charges what it cost
    clock.advance(1000)
    sweep(p)
    sweep(p)

    # THEN the late task was charged once, and the books balance
    charged = p.job("t1")["attempts"][0]
    assert charged["late_task_lease"] is None and charged["cost_micros"] > 0
    p.assert_books_balanced()


def test_spend_audit_and_late_task_charge_the_same_render_once(pipeline, clock):
    # GIVEN a job closed at its wall time (charging 0) whose runway task is kept late
    p, attempt = _wall_time_late_task(pipeline, clock)
    task_id = attempt["provider_task_id"]

    # WHEN the render finishes at the provider and the hourly spend audit runs before the
    # reconciler's next look at the late task (the provider shows it billed)
    clock.advance(1000)
    source = p.app.spend_sources["runway"]
    source.tasks.append(ProviderTask(task_id, task_id, attempt["model"], "succeeded", True, None))
    p.app.spend_audit.run(p.day())
    sweep(p)
    sweep(p)

    # THEN the render, billed once by the provider, is on the books once
    charged = p.job("t1")["attempts"][0]
    assert charged["cost_micros"] > 0
    assert p.ledger()["spent_micros"] == charged["cost_micros"]


def test_a_lost_create_does_not_adopt_another_jobs_stored_task(pipeline, clock, monkeypatch):
    # GIVEN job A rendered on runway (its task id stored), and job B with the very same
    # request whose render function was lost right after its submit intent
    p = pipeline(lease_s=LEASE)
    p.run({**TEXT, "job_id": "a"})
    a_task = p.job("a")["attempts"][0]["provider_task_id"]
    assert p.job("a")["status"] == "SUCCEEDED"
    backend = p.app.backend("runway")

    def crash(task, before_send=None):
        before_send()
        raise RuntimeError("instance lost mid-create")

    monkeypatch.setattr(backend, "submit", crash)
    p.run({**TEXT, "job_id": "b"})
    assert p.job("b")["attempts"][0]["submitting_at"] is not None
    # the provider lookup matches on model and input only (as ReplicateBackend.find does):
    # the one task created shortly before with exactly this input is A's
    monkeypatch.setattr(backend, "find", lambda task, sent_at: a_task)

    # WHEN the reconciler runs after B's submit window, and again to poll what it adopted
    clock.advance(LEASE)
    sweep(p)
    sweep(p)

    # THEN B is not handed A's render (A's task is already stored on A's attempt): B is
    # charged its hold as an estimate, and A's one bill is not recorded twice
    b_first = p.job("b")["attempts"][0]
    assert b_first["provider_task_id"] != a_task
    p.assert_books_balanced()
