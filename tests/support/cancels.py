"""Cancelling jobs in the embedded-pipeline scenarios (tests/unit/test_cancel*.py): a cancel
on the control topic, the outcomes a job published, its holds, and the races a cancel meets
(a create in flight, a create whose answer was lost)."""

from __future__ import annotations

import json

from aiprod.adapters.provider_common import error
from aiprod.domain import taxonomy


def cancel(p, job_id: str, reason: str = "not needed", drain: bool = True, **fields) -> None:
    """A cancel message on the control topic, handled (then, with ``drain``, everything it
    set in motion)."""
    body = {"action": "cancel", "job_id": job_id, "reason": reason, **fields}
    p.app.job_control.handle(json.dumps(body).encode(), {})
    if drain:
        p.drain()


def outcomes_of(p, job_id: str) -> list[bytes]:
    return [
        m.data for m in p.bus.published["render-outcomes"] if json.loads(m.data)["job_id"] == job_id
    ]


def price(p, job_id: str, number: int = 1) -> int:
    return p.job(job_id)["attempts"][number - 1]["hold_micros"]


def cancel_during_create(p, monkeypatch, job_id: str, apply_outcome: bool) -> None:
    """``job_id``'s create is sent (intent written) and, before its answer, the job is
    cancelled; with ``apply_outcome`` handle_outcome applies the cancel's outcome before the
    create answers (the likely order: a create takes seconds, a settle milliseconds)."""
    sim = p.app.backend("runway")
    submit = sim.submit

    def racing(task, before_send=None):
        def intend():
            before_send()
            if task.job_id == job_id and task.attempt == 1:
                cancel(p, job_id, drain=False)
                if apply_outcome:
                    for data in outcomes_of(p, job_id):
                        p.app.outcomes.handle(data, {})

        return submit(task, intend)

    monkeypatch.setattr(sim, "submit", racing)


def lost_answer_then_findable(p, monkeypatch) -> list[str]:
    """replicate creates the task but the answer is lost (a 503); the provider's list only
    shows it after the render function's immediate lookup (so the attempt is left RUNNING,
    submit_unconfirmed, no task id); later lookups find it."""
    sim = p.app.backend("replicate")
    submit, created, looked = sim.submit, [], []

    def lost(task, before_send=None):
        created.append(submit(task, before_send))
        raise error(taxonomy.SUBMIT_UNCONFIRMED, "503 from the gateway")

    def find(task, sent_at):
        looked.append(task.job_id)
        return created[0] if len(looked) > 1 else None

    monkeypatch.setattr(sim, "submit", lost)
    monkeypatch.setattr(sim, "can_find", True)
    monkeypatch.setattr(sim, "find", find)
    return created
