"""The provider error taxonomy as tables: each provider's failures map to the class and code
the outcome handler acts on (issue 3), with content policy as configured."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from aiprod.adapters.provider_common import retry_after
from aiprod.adapters.simulated import SimulatedBackend
from aiprod.domain import taxonomy
from aiprod.domain.catalog import default_catalog
from aiprod.domain.error_codes import ErrorCode
from aiprod.domain.messages import ErrorClass
from aiprod.domain.policy import NOT_PROVIDER_HEALTH
from aiprod.exceptions import ConfigError, ProviderError
from support.live import render_task

F, R, T, U = ErrorClass.FALLBACK, ErrorClass.RETRY_SAME, ErrorClass.TERMINAL, ErrorClass.UNKNOWN


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (400, (F, "bad_request")),
        (401, (F, "unauthorized")),
        (403, (F, "forbidden")),
        (422, (F, "bad_request")),
        (429, (R, "throttled")),
        # a 5xx or a gateway timeout may hide a created task: never sent again blindly
        (500, (U, "submit_unconfirmed")),
        (502, (U, "submit_unconfirmed")),
        (503, (U, "submit_unconfirmed")),
        (504, (U, "submit_unconfirmed")),
        (408, (U, "submit_unconfirmed")),
        (418, (F, "bad_request")),
    ],
)
def test_http_answers_to_a_create(status, verdict):
    assert taxonomy.http_status(status) == verdict


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        # a cancel is safe to repeat: a 5xx or a gateway timeout leaves nothing in doubt
        (500, (R, "server_error")),
        (503, (R, "server_error")),
        (408, (R, "server_error")),
        (429, (R, "throttled")),
        (401, (F, "unauthorized")),
        (403, (F, "forbidden")),
        (422, (F, "bad_request")),
    ],
)
def test_http_answers_to_a_cancel(status, verdict):
    assert taxonomy.cancel_status(status) == verdict


@pytest.mark.parametrize(
    ("code", "policy", "verdict"),
    [
        ("SAFETY.INPUT.TEXT", "terminal", (T, "content_policy")),
        ("SAFETY.OUTPUT.VIDEO", "terminal", (T, "content_policy")),
        ("SAFETY.INPUT.IMAGE", "fallback", (F, "content_policy")),
        ("INPUT_PREPROCESSING.SAFETY.TEXT", "terminal", (T, "content_policy")),
        ("INTERNAL.BAD_OUTPUT.CODE01", "terminal", (F, "provider_failed")),
        ("INTERNAL", "terminal", (F, "provider_failed")),
        ("ASSET.INVALID", "terminal", (F, "bad_request")),
        ("SOMETHING.NEW", "terminal", (F, "provider_failed")),
        (None, "terminal", (F, "provider_failed")),
    ],
)
def test_runway_failure_codes(code, policy, verdict):
    assert taxonomy.runway_failure(code, policy) == verdict


@pytest.mark.parametrize(
    ("code", "message", "verdict"),
    [
        (
            3,
            "Veo could not generate ... usage guidelines. Support codes: 58061214",
            (T, "content_policy"),
        ),
        (3, "Invalid duration", (F, "bad_request")),
        (8, "Quota exceeded", (R, "throttled")),
        (13, "Internal error", (F, "provider_failed")),
        (None, "", (F, "provider_failed")),
    ],
)
def test_veo_operation_errors(code, message, verdict):
    assert taxonomy.veo_operation_error(code, message, "terminal") == verdict


@pytest.mark.parametrize(
    ("status", "error", "verdict"),
    [
        ("failed", "NSFW content detected. Try a different prompt.", (T, "content_policy")),
        ("failed", "CUDA out of memory", (F, "provider_failed")),
        ("canceled", "", (F, "cancelled")),
        ("aborted", "", (F, "provider_failed")),
    ],
)
def test_replicate_terminal_statuses(status, error, verdict):
    assert taxonomy.replicate_failure(status, error, "terminal") == verdict


def test_our_own_mistakes_never_move_a_circuit_but_outages_and_empty_accounts_do():
    assert taxonomy.BAD_REQUEST[1] in NOT_PROVIDER_HEALTH
    assert taxonomy.content_policy("fallback")[1] in NOT_PROVIDER_HEALTH
    for verdict in (taxonomy.SERVER_ERROR, taxonomy.PROVIDER_FAILED, taxonomy.MISCONFIGURED):
        assert verdict[1] not in NOT_PROVIDER_HEALTH
    assert taxonomy.SUBMIT_UNCONFIRMED[0] is U and taxonomy.MALFORMED[0] is U


NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ({"retry-after": "30"}, 30.0),
        ({"retry-after": "Fri, 15 Jan 2027 08:00:45 GMT"}, 45.0),  # an HTTP date, 45 s ahead
        ({"retry-after": "Fri, 15 Jan 2027 07:59:00 GMT"}, 0.0),  # already past
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_reads_seconds_or_an_http_date(header, seconds):
    assert retry_after(SimpleNamespace(headers=header), now=NOW) == seconds
    assert retry_after(None) is None  # an error with no response at all


def test_every_verdict_carries_a_member_of_the_closed_error_codes():
    verdicts = [value for value in vars(taxonomy).values() if _is_verdict(value)]
    verdicts += list(taxonomy.HTTP_STATUS.values()) + list(taxonomy.GRPC_CODES.values())
    verdicts += [v for _, v in taxonomy.RUNWAY_FAILURES if v is not None]
    verdicts += [taxonomy.content_policy(p) for p in ("terminal", "fallback")]
    assert len(verdicts) > 20
    for error_class, code in verdicts:
        assert isinstance(error_class, ErrorClass) and isinstance(code, ErrorCode), code
    assert all(isinstance(code, ErrorCode) for code in NOT_PROVIDER_HEALTH)


@pytest.mark.parametrize("script", [{"error_code": "oops"}, {"error_class": "MAYBE"}])
def test_the_simulation_may_name_only_known_classes_and_codes(script):
    with pytest.raises(ConfigError, match="AIPROD_SIMULATION"):
        SimulatedBackend("runway", default_catalog(), script, lambda: 0.0)


def test_a_scripted_outage_refuses_with_the_scripted_members():
    script = {"down": True, "error_class": "TERMINAL", "error_code": "content_policy"}
    backend = SimulatedBackend("runway", default_catalog(), script, lambda: 0.0)

    with pytest.raises(ProviderError) as caught:
        backend.submit(render_task("runway"))

    assert caught.value.error_class is ErrorClass.TERMINAL
    assert caught.value.code is ErrorCode.CONTENT_POLICY


def _is_verdict(value: object) -> bool:
    return isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], ErrorClass)
