"""The VideoBackend contract: every provider adapter, as bootstrap builds it, answers alike.

Parametrized over the simulated provider and the three live adapters (their real SDKs, outputs
kept in the bucket) against the local wire fakes. Each subject is built for a scenario: a
render that succeeds, a create the provider rejects, a render that fails after it started,
or a slow render (``slow``: still running after a look, for the cancel tests).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from aiprod.adapter_tables import make_backend
from aiprod.config import Settings
from aiprod.domain.catalog import default_catalog
from aiprod.domain.error_codes import ErrorCode
from aiprod.domain.messages import ErrorClass, RenderTask
from aiprod.exceptions import ProviderError
from aiprod.ports import ProviderResult, VideoBackend
from fakes.base import Reply
from fakes.replicate import problem
from fakes.veo import error_body
from support.live import live_backend, render_task

BACKENDS = ("simulated", "runway", "veo", "replicate")
MAX_LOOKS = 10
VEO_MODEL = "publishers/google/models/veo-3.1-fast-generate-001"
# A task id each provider never issued, in the shape it issues them.
UNKNOWN_IDS: dict[str, Callable[[], str]] = {
    "simulated": lambda: f"sim~{uuid.uuid4()}",
    "runway": lambda: str(uuid.uuid4()),
    "veo": lambda: f"projects/p/locations/us-central1/{VEO_MODEL}/operations/{uuid.uuid4()}",
    "replicate": lambda: uuid.uuid4().hex,
}
# How each provider rejects a create (an invalid request), and fails a started render.
REJECTIONS = {
    "runway": Reply(400, {"error": "Validation of body failed: promptText"}),
    "veo": Reply(400, error_body(400, "INVALID_ARGUMENT", "Invalid request: bad seed")),
    "replicate": Reply(422, problem(422, "Input validation failed", "- input.prompt")),
}
FAILURES = {
    "runway": {"final": "FAILED", "failure_code": "INTERNAL.BAD_OUTPUT.CODE01"},
    "veo": {"final": "ERROR"},
    "replicate": {"final": "failed"},
}
SIMULATION = {
    "ok": {"latency_s": 30},
    "reject": {"down": True, "error_code": "bad_request"},
    "fail": {"latency_s": 30, "failure_rate": 1.0},
    "slow": {"latency_s": 30},
}
FAILED_CODE = {"simulated": ErrorCode.RENDER_FAILED} | dict.fromkeys(
    FAILURES, ErrorCode.PROVIDER_FAILED
)


@dataclass
class Subject:
    kind: str  # one of BACKENDS
    backend: VideoBackend
    task: RenderTask
    started: Callable[[], int]  # renders the provider has started (a fake's tasks)
    advance: Callable[[], None]  # let time pass between two looks
    unknown_id: str
    cancels: Callable[[], list[str]]  # task ids the provider's cancel endpoint received
    fake: Any = None  # the wire fake of a live adapter (its bill)


def simulated(scenario: str, request: pytest.FixtureRequest) -> Subject:
    """The simulated provider standing in for Runway; time passes only when told."""
    clock = request.getfixturevalue("clock")
    settings = Settings(simulation={"runway": SIMULATION[scenario]})
    backend = make_backend("runway", settings, default_catalog(), clock)

    def advance() -> None:
        clock.advance(10)

    def started() -> int:
        return len(backend.submitted)

    unknown = UNKNOWN_IDS["simulated"]()
    return Subject(
        "simulated",
        backend,
        render_task("runway"),
        started,
        advance,
        unknown,
        lambda: backend.cancelled,
    )


def live(name: str) -> Callable[[str, pytest.FixtureRequest], Subject]:
    """A live adapter on its wire fake; the fake finishes a task at its second look."""

    def build(scenario: str, request: pytest.FixtureRequest) -> Subject:
        fake = getattr(request.getfixturevalue("fakes"), name)
        if scenario == "reject":
            fake.queue("create", REJECTIONS[name])
        for field, value in FAILURES[name].items() if scenario == "fail" else ():
            setattr(fake, field, value)
        fake.polls_before_done = 3 if scenario == "slow" else fake.polls_before_done

        def started() -> int:
            return len(fake.started)

        backend = live_backend(request.getfixturevalue("live_env"), name)
        unknown, cancels = UNKNOWN_IDS[name](), lambda: fake.cancelled
        return Subject(
            name, backend, render_task(name), started, lambda: None, unknown, cancels, fake
        )

    return build


BUILDERS = {"simulated": simulated} | {name: live(name) for name in BACKENDS[1:]}


@pytest.fixture(params=BACKENDS)
def subject_for(request) -> Callable[[str], Subject]:
    """``subject_for(scenario)``: the backend under test, set up for ``ok``, ``reject``
    (its next create is refused) or ``fail`` (a started render fails)."""
    return lambda scenario: BUILDERS[request.param](scenario, request)


# The backends whose provider can stop a running task (Veo cannot: its own test below).
STOPPABLE = tuple(name for name in BACKENDS if name != "veo")


@pytest.fixture(params=STOPPABLE)
def stoppable_for(request) -> Callable[[str], Subject]:
    """``subject_for``, over the backends that can cancel only."""
    return lambda scenario: BUILDERS[request.param](scenario, request)


def look_until_done(subject: Subject, task_id: str) -> tuple[ProviderResult, int]:
    for look in range(1, MAX_LOOKS + 1):
        result = subject.backend.poll(task_id, subject.task)
        if result.done:
            return result, look
        subject.advance()
    raise AssertionError(f"not done after {MAX_LOOKS} looks")


def test_submit_starts_one_render_and_answers_its_task_id(subject_for):
    subject = subject_for("ok")

    task_id = subject.backend.submit(subject.task)

    assert isinstance(task_id, str) and task_id
    assert subject.started() == 1


def test_polling_reaches_done_with_an_output_and_a_whole_non_negative_cost(subject_for):
    # GIVEN a submitted render that takes a while
    subject = subject_for("ok")
    task_id = subject.backend.submit(subject.task)

    # WHEN it is looked at: first still running, then done
    first = subject.backend.poll(task_id, subject.task)
    subject.advance()
    result, _ = look_until_done(subject, task_id)

    # THEN the first look was "not done" and says nothing else
    assert first == ProviderResult(done=False)
    # AND the render finished with an output and an integer cost, and no error
    assert (result.error_class, result.error_code) == (None, None), result
    assert isinstance(result.output_uri, str) and "://" in result.output_uri
    assert type(result.cost_micros) is int and result.cost_micros >= 0


def test_polling_never_submits(subject_for):
    # GIVEN a submitted render
    subject = subject_for("ok")
    task_id = subject.backend.submit(subject.task)

    # WHEN it is looked at until done, and again after that, and an unknown task is looked at
    look_until_done(subject, task_id)
    for _ in range(3):
        again = subject.backend.poll(task_id, subject.task)
        assert again.done
    subject.backend.poll(subject.unknown_id, subject.task)

    # THEN the provider started exactly the one render
    assert subject.started() == 1


def test_a_request_the_provider_rejects_raises_its_class_and_code(subject_for):
    subject = subject_for("reject")

    with pytest.raises(ProviderError) as caught:
        subject.backend.submit(subject.task)

    refusal = caught.value
    assert refusal.error_class is ErrorClass.FALLBACK
    assert isinstance(refusal.code, ErrorCode) and refusal.code is ErrorCode.BAD_REQUEST
    assert refusal.cost_micros == 0 and str(refusal)
    assert subject.started() == 0


def test_a_render_that_fails_after_it_started_is_done_with_its_class_and_code(subject_for):
    subject = subject_for("fail")
    task_id = subject.backend.submit(subject.task)

    result, _ = look_until_done(subject, task_id)

    assert result.error_class is ErrorClass.FALLBACK
    assert isinstance(result.error_code, ErrorCode)
    assert result.error_code is FAILED_CODE[subject.kind]
    assert result.output_uri is None and result.cost_micros == 0 and result.message


def test_an_unknown_task_id_is_done_as_a_bad_request_costing_nothing(subject_for):
    # The adapters' documented answer: a task the provider does not know (404) will never
    # finish, so it is done, FALLBACK bad_request (the job goes on to its next backend).
    subject = subject_for("ok")

    result = subject.backend.poll(subject.unknown_id, subject.task)

    assert result.done
    assert (result.error_class, result.error_code) == (ErrorClass.FALLBACK, ErrorCode.BAD_REQUEST)
    assert isinstance(result.error_code, ErrorCode)
    assert result.output_uri is None and result.cost_micros == 0
    assert subject.started() == 0


# What a task cancelled one look (10 s of the simulated provider's 30) into its render costs,
# by each provider's rule. Simulated: the share of its latency that ran (10/30 of the price).
# Runway: a task Runway sees RUNNING is not refunded, so all its credits (gen4.5, 12 a
# second, 5 s). Replicate: the Wan fast models are priced per output video, none was made.
GEN45_PRICE = default_catalog().model("runway", "gen4.5").price_for("720p", 5) or 0
CANCELLED_COST = {"simulated": GEN45_PRICE * 10 // 30, "runway": 12 * 5 * 10_000, "replicate": 0}
CANCELLED = (ErrorClass.FALLBACK, ErrorCode.CANCELLED)


def started_then_cancelled(subject: Subject, times: int = 1) -> str:
    """A slow render looked at once, then cancelled ``times`` times (each taken: True)."""
    task_id = subject.backend.submit(subject.task)
    assert not subject.backend.poll(task_id, subject.task).done
    subject.advance()
    for _ in range(times):
        assert subject.backend.cancel(task_id, subject.task) is True
    return task_id


def test_a_cancelled_running_task_ends_cancelled_at_its_providers_price(stoppable_for):
    # GIVEN a render still running, on a provider that can stop one
    subject = stoppable_for("slow")
    assert subject.backend.can_cancel

    # WHEN it is cancelled, then looked at until done
    task_id = started_then_cancelled(subject)
    result, _ = look_until_done(subject, task_id)

    # THEN the provider's cancel endpoint got it, and the task ended cancelled, at the
    # provider's price for a stop at that point (and the fake bills exactly that)
    assert subject.cancels() == [task_id]
    assert (result.error_class, result.error_code) == CANCELLED, result
    assert result.output_uri is None and result.message
    assert result.cost_micros == CANCELLED_COST[subject.kind]
    assert subject.fake is None or subject.fake.billed()[task_id] == result.cost_micros
    # AND a cancel after the end changes nothing
    assert subject.backend.cancel(task_id, subject.task) is True
    assert subject.backend.poll(task_id, subject.task) == result


def test_a_repeated_cancel_is_harmless(stoppable_for):
    subject = stoppable_for("slow")
    assert subject.backend.can_cancel

    task_id = started_then_cancelled(subject, times=3)
    result, _ = look_until_done(subject, task_id)

    assert (result.error_class, result.error_code) == CANCELLED
    assert result.cost_micros == CANCELLED_COST[subject.kind]
    assert set(subject.cancels()) == {task_id} and subject.started() == 1
    # AND a task the provider never issued has nothing to stop; its poll answers as before
    assert subject.backend.cancel(subject.unknown_id, subject.task) is True
    assert subject.backend.poll(subject.unknown_id, subject.task).error_code == "bad_request"


def test_cancelling_a_finished_task_leaves_its_result(subject_for):
    # GIVEN a render that finished with its output and cost
    subject = subject_for("ok")
    task_id = subject.backend.submit(subject.task)
    finished, _ = look_until_done(subject, task_id)

    # WHEN it is cancelled (twice), THEN it still reads as it finished
    for _ in range(2):
        subject.backend.cancel(task_id, subject.task)
    assert subject.backend.poll(task_id, subject.task) == finished
    assert finished.error_class is None and finished.output_uri


def test_a_provider_that_cannot_cancel_says_so_and_its_task_finishes(request):
    # GIVEN Veo (google-genai has no public operation cancel) with a render running
    subject = BUILDERS["veo"]("slow", request)
    task_id = subject.backend.submit(subject.task)

    # WHEN it is cancelled, THEN the answer is False and nothing was sent
    assert subject.backend.can_cancel is False
    assert subject.backend.cancel(task_id, subject.task) is False
    assert subject.cancels() == []
    # AND the task runs to its end and is charged as it finishes
    result, _ = look_until_done(subject, task_id)
    assert result.error_class is None and result.output_uri
    assert result.cost_micros == subject.fake.billed()[task_id] > 0
