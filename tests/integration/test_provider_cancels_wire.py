"""Cancels through the real SDKs against the wire fakes: what each adapter sends, a failing
cancel's class and code, and the prices the contract suite does not reach (a Runway task
refunded while throttled, a Replicate model billed by compute time)."""

from __future__ import annotations

import pytest

from aiprod.domain.catalog import default_catalog
from aiprod.domain.error_codes import ErrorCode
from aiprod.domain.messages import ErrorClass
from aiprod.exceptions import ProviderError
from fakes.base import Reply
from fakes.replicate import problem
from support.live import live_backend, render_task

CANCELLED = (ErrorClass.FALLBACK, ErrorCode.CANCELLED)


def running(backend, task, fake, looks: int = 1) -> str:
    fake.polls_before_done = 5
    task_id = backend.submit(task)
    for _ in range(looks):
        assert not backend.poll(task_id, task).done
    return task_id


def test_runway_cancels_with_delete_only_a_task_still_running(live_env, fakes):
    backend, task = live_backend(live_env, "runway"), render_task("runway")
    task_id = running(backend, task, fakes.runway)

    backend.cancel(task_id, task)
    backend.cancel(task_id, task)  # it reads CANCELLED now: nothing more is sent

    deletes = fakes.runway.calls("DELETE")
    assert [d.path for d in deletes] == [f"/v1/tasks/{task_id}"]
    assert deletes[0].header("x-runway-version") == "2024-11-06"


def test_a_runway_task_cancelled_while_throttled_is_refunded(live_env, fakes):
    # GIVEN a task waiting in Runway's queue (THROTTLED): Runway refunds its credits
    backend, task = live_backend(live_env, "runway"), render_task("runway")
    fakes.runway.throttled_polls = 10
    task_id = running(backend, task, fakes.runway)

    assert backend.cancel(task_id, task) is True
    result = backend.poll(task_id, task)

    assert (result.error_class, result.error_code) == CANCELLED
    assert result.cost_micros == 0 == fakes.runway.billed()[task_id]


@pytest.mark.parametrize(
    ("status", "verdict"),
    [(500, (ErrorClass.RETRY_SAME, "server_error")), (403, (ErrorClass.FALLBACK, "forbidden"))],
)
def test_a_failing_runway_delete_raises_its_class_and_code(live_env, fakes, status, verdict):
    backend, task = live_backend(live_env, "runway"), render_task("runway")
    task_id = running(backend, task, fakes.runway)
    fakes.runway.queue("cancel", Reply(status, {"error": "nope"}))

    with pytest.raises(ProviderError) as caught:
        backend.cancel(task_id, task)

    assert (caught.value.error_class, caught.value.code) == verdict
    assert len(fakes.runway.calls("DELETE")) == 1  # the SDK does not retry it; the caller may
    assert backend.cancel(task_id, task) is True  # a repeat goes through
    assert backend.poll(task_id, task).error_code == ErrorCode.CANCELLED


def test_replicate_cancels_with_its_cancel_endpoint(live_env, fakes):
    backend, task = live_backend(live_env, "replicate"), render_task("replicate")
    task_id = running(backend, task, fakes.replicate)

    assert backend.cancel(task_id, task) is True

    (sent,) = fakes.replicate.calls("POST", f"/v1/predictions/{task_id}")
    assert sent.path == f"/v1/predictions/{task_id}/cancel"
    assert sent.header("authorization") == f"Bearer {fakes.replicate.token}"


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        (Reply(500, problem(500, "Internal", "boom")), (ErrorClass.RETRY_SAME, "server_error")),
        (Reply(429, problem(429, "Throttled", "slow down")), (ErrorClass.RETRY_SAME, "throttled")),
        (Reply(200, {}, delay_s=3.0), (ErrorClass.RETRY_SAME, "unreachable")),  # a hang
    ],
)
def test_a_failing_replicate_cancel_raises_its_class_and_code(live_env, fakes, reply, verdict):
    backend, task = live_backend(live_env, "replicate"), render_task("replicate")
    task_id = running(backend, task, fakes.replicate)
    fakes.replicate.queue("cancel", reply)

    with pytest.raises(ProviderError) as caught:
        backend.cancel(task_id, task)

    assert (caught.value.error_class, caught.value.code) == verdict


def test_a_replicate_model_billed_by_compute_time_is_charged_the_time_it_ran(live_env, fakes):
    # GIVEN a model billed by hardware time ($0.0014/s), canceled after 12.5 s of compute
    catalog = default_catalog()
    spec = catalog.model("replicate", "wan-video/wan-2.2-t2v-fast")
    timed = spec.model_copy(update={"cost_basis": "predict_time", "hardware_micros_per_s": 1400})
    backend, task = live_backend(live_env, "replicate"), render_task("replicate")
    backend._inner._catalog = _with_model(catalog, "wan-video/wan-2.2-t2v-fast", timed)
    task_id = running(backend, task, fakes.replicate)

    assert backend.cancel(task_id, task) is True
    result = backend.poll(task_id, task)

    assert (result.error_class, result.error_code) == CANCELLED
    assert result.cost_micros == round(12.5 * 1400)


def _with_model(catalog, name, spec):
    backend = catalog.backends["replicate"]
    models = {**backend.models, name: spec}
    backends = {**catalog.backends, "replicate": backend.model_copy(update={"models": models})}
    return catalog.model_copy(update={"backends": backends})
