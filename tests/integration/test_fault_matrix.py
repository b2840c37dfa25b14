"""The fault matrix of issue 10 ("Money truth"): every fault, for every provider it applies
to, through the embedded pipeline with the live adapters against the wire fakes.

At the end of each scenario:
- every job is over (a quarantined, unreadable document aside);
- the production budget audit finds the books in line with the jobs, and no hold is left
  but a quarantined job's;
- aiprod recorded exactly what the providers billed (the fakes keep the bill), except that
  a task nobody can look up is charged its hold, so there recorded ≥ billed;
- no job reached its provider with a second create (every first create here did exist).

Scenarios that fail on today's code are xfail (strict) with the fault path of the issue that
fixes them (``support.faults``), so a fix flips them visibly.
"""

from __future__ import annotations

import pytest

from aiprod.repositories import unattributed
from support.fault_world import World, describe
from support.faults import matrix, scenario


def _params() -> list:
    return [
        pytest.param(
            fault,
            provider,
            id=f"{fault.name}-{provider}",
            marks=[pytest.mark.xfail(strict=True, reason=fault.failing[provider])]
            if provider in fault.failing
            else [],
        )
        for fault, provider in matrix()
    ]


@pytest.mark.parametrize(("fault", "provider"), _params())
def test_recorded_spend_equals_the_providers_bill(fault, provider, storage_emulator, tmp_path):
    # GIVEN the fault armed on one provider, WHEN its jobs run and the reconciler sweeps
    with scenario(fault, provider, storage_emulator, tmp_path) as world:
        # THEN every job ended, the books balance, and aiprod recorded what was billed
        state = describe(world)
        assert world.open_jobs() == [], f"jobs never ended: {state}"
        _assert_books(world, state)
        recorded, billed = world.recorded_micros(), world.billed_micros()
        if provider in fault.unfindable:
            assert recorded >= billed, f"recorded {recorded} < billed {billed}: {state}"
        else:
            assert recorded == billed, f"recorded {recorded} != billed {billed}: {state}"
        twice = {job: n for job, n in world.creates_by_job().items() if n > 1}
        assert twice == {}, f"a job was created twice at {provider}: {state}"
        _assert_fault_specifics(fault.name, world, state)


def _assert_books(world: World, state: str) -> None:
    """The audit's only finding may be a quarantined job's hold, which nothing settles (the
    audit cannot read that job, so the hold is on a shard with no attempt to explain it)."""
    quarantined = world.quarantined()
    left = world.notes.get("quarantined_hold", 0) if quarantined else 0
    findings = world.audit_discrepancies()
    unexplained = [f for f in findings if f.check != "held"]
    held_unexplained = sum(f.found - f.expected for f in findings if f.check == "held")
    assert unexplained == [] and held_unexplained == left, f"budget audit: {findings}: {state}"
    assert world.ledger()["held_micros"] == left, f"holds left on the books: {state}"
    for job_id, doc in world.docs().items():
        if job_id in quarantined:
            continue
        attempts_cost = sum(a["cost_micros"] for a in doc["attempts"])
        assert doc["cost_micros"] == attempts_cost, f"{job_id}: cost != its attempts: {state}"
    spent = sum(d["cost_micros"] for k, d in world.docs().items() if k not in quarantined)
    # the hourly spend audit charges what the provider billed and no readable job explains
    spent += sum(c["amount_micros"] for c in world.pipeline.store.list(unattributed.COLLECTION))
    assert world.ledger()["spent_micros"] == spent, f"spent != the jobs' costs: {state}"


def _assert_fault_specifics(name: str, world: World, state: str) -> None:
    if name == "slow_drip_image":
        # the fetch gave up within the provider's deadline, before the last byte dripped in
        # (the drip is small enough to fit in socket buffers: the fake cannot see the hang-up)
        [attempt] = world.pipeline.job("j1")["attempts"]
        deadline = world.pipeline.app.settings.providers.timeout_s
        assert f"slower than {deadline:.0f} s" in attempt["reason"], state
    if name == "unreadable_job":
        # j1 is set aside, its hold kept for an operator; j2 was polled and delivered
        assert list(world.quarantined()) == ["j1"], state
        assert world.docs()["j2"]["status"] == "SUCCEEDED", state
