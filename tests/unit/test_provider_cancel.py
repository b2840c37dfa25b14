"""``VideoBackend.cancel``: how ``LiveBackend``'s template classifies a failing cancel (a
stand-in provider whose ``_cancel`` raises what a test scripts, no SDK), and the simulated
provider's price for a stopped task. The live adapters on their wire fakes run the same
cancel contract in ``tests/contract/test_video_backend.py``."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from aiprod.adapters.provider_base import LiveBackend
from aiprod.adapters.simulated import SimulatedBackend
from aiprod.config import ProviderSettings
from aiprod.domain.catalog import default_catalog
from aiprod.domain.error_codes import ErrorCode
from aiprod.domain.messages import ErrorClass
from aiprod.exceptions import ConfigError, ProviderError
from fakes.clock import FakeClock
from support.live import render_task


class HTTPAnswer(Exception):
    """An SDK error that carries an HTTP answer (status, message, headers)."""

    def __init__(self, status: int, headers: dict[str, str] | None = None):
        super().__init__(f"HTTP {status}")
        self.status, self.response = status, SimpleNamespace(headers=headers or {})


class NoAnswer(Exception):
    """An SDK transport error: the request got no answer."""


class Stub(LiveBackend):
    """A provider whose cancel raises ``raises`` (or succeeds); it records each call."""

    name, can_cancel, poll_retried = "stub", True, NoAnswer

    def __init__(self, raises: BaseException | None = None, can_cancel: bool = True):
        super().__init__(ProviderSettings(), default_catalog())
        self.raises, self.can_cancel, self.asked = raises, can_cancel, []

    def _cancel(self, provider_task_id: str) -> None:
        self.asked.append(provider_task_id)
        if self.raises is not None:
            raise self.raises

    def _status(self, exc: BaseException) -> int | None:
        return exc.status if isinstance(exc, HTTPAnswer) else None

    def _reason(self, exc: Any) -> str:
        return f"stub HTTP {exc.status}"

    _prepare = _create = _fetch = _read = _connect = None  # type: ignore[assignment]


TASK = render_task("runway")


def cancel_failure(raises: BaseException) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        Stub(raises).cancel("t-1", TASK)
    return caught.value


@pytest.mark.parametrize(
    ("status", "error_class", "code"),
    [
        (500, ErrorClass.RETRY_SAME, ErrorCode.SERVER_ERROR),
        (503, ErrorClass.RETRY_SAME, ErrorCode.SERVER_ERROR),
        (429, ErrorClass.RETRY_SAME, ErrorCode.THROTTLED),
        (401, ErrorClass.FALLBACK, ErrorCode.UNAUTHORIZED),
    ],
)
def test_an_http_error_answer_to_a_cancel_raises_its_class_and_code(status, error_class, code):
    failure = cancel_failure(HTTPAnswer(status))

    assert (failure.error_class, failure.code) == (error_class, code)
    assert "cancel" in str(failure) and failure.cost_micros == 0


def test_a_throttled_cancel_carries_the_providers_retry_after():
    failure = cancel_failure(HTTPAnswer(429, {"retry-after": "7"}))
    assert failure.code is ErrorCode.THROTTLED and failure.retry_after_s == 7.0


def test_a_cancel_with_no_answer_is_unreachable_and_may_be_repeated():
    failure = cancel_failure(NoAnswer("connection reset"))
    assert (failure.error_class, failure.code) == (ErrorClass.RETRY_SAME, ErrorCode.UNREACHABLE)


def test_a_missing_key_on_a_cancel_is_unknown_misconfigured():
    failure = cancel_failure(ConfigError("RUNWAYML_API_SECRET is not set"))
    assert (failure.error_class, failure.code) == (ErrorClass.UNKNOWN, ErrorCode.MISCONFIGURED)


def test_a_task_the_provider_does_not_know_has_nothing_to_stop():
    # its polls answer done, FALLBACK bad_request, with or without the cancel
    assert Stub(HTTPAnswer(404)).cancel("t-1", TASK) is True


def test_an_error_no_sdk_classified_propagates():
    with pytest.raises(RuntimeError):
        Stub(RuntimeError("a bug")).cancel("t-1", TASK)


def test_a_provider_that_cannot_cancel_answers_false_and_sends_nothing():
    stub = Stub(can_cancel=False)
    assert stub.cancel("t-1", TASK) is False and stub.asked == []


def simulated(latency_s: float, clock: FakeClock, **script: object) -> SimulatedBackend:
    return SimulatedBackend("runway", default_catalog(), {"latency_s": latency_s, **script}, clock)


PRICE = default_catalog().model("runway", "gen4.5").price_for("720p", 5) or 0


@pytest.mark.parametrize(
    ("ran_s", "cost"), [(0, 0), (1, PRICE // 7), (6.999, PRICE * 6999 // 7000)]
)
def test_a_simulated_task_stopped_costs_the_share_of_its_latency_that_ran(ran_s, cost):
    clock = FakeClock()
    backend = simulated(7, clock)
    task_id = backend.submit(TASK)
    clock.advance(ran_s)

    assert backend.cancel(task_id, TASK) is True
    clock.advance(60)  # long past when it would have finished
    result = backend.poll(task_id, TASK)

    assert (result.done, result.error_code) == (True, ErrorCode.CANCELLED)
    assert result.cost_micros == cost and 0 <= cost <= PRICE


def test_a_simulated_task_already_done_or_failing_is_priced_by_its_own_end():
    clock = FakeClock()
    done, fails = simulated(0, clock), simulated(10, clock, failure_rate=1.0)
    done_id, fails_id = done.submit(TASK), fails.submit(TASK)
    clock.advance(5)

    # a task already done ignores the cancel; one that would fail, stopped half-way, is
    # cancelled at half its price, and a later repeat keeps that price
    assert done.cancel(done_id, TASK) and fails.cancel(fails_id, TASK)
    clock.advance(3)
    assert fails.cancel(fails_id, TASK)

    finished, stopped = done.poll(done_id, TASK), fails.poll(fails_id, TASK)
    assert (finished.error_code, finished.cost_micros) == (None, PRICE)
    assert (stopped.error_code, stopped.cost_micros) == (ErrorCode.CANCELLED, PRICE // 2)
