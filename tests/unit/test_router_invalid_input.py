"""route_job on hostile input: every message is answered once, nothing escapes, and only a
REJECTED job document is stored (when the message names a usable job_id)."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from aiprod.config import Settings
from aiprod.domain.messages import JOB_ID_PATTERN, JobRequest
from aiprod_tools.embedded import embedded_app

VALID = {"job_id": "job-1", "prompt": "a cat"}
GOOD_IDS = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_.\-]{0,20}\Z")
BAD_IDS = st.sampled_from(["", ".", "..", "a/b", "_x", "x" * 129, " a", "é"]) | st.integers()
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(10**20), 10**20)
    | st.floats(allow_nan=False)
    | st.text(max_size=30)
)
JSON_ANY = st.recursive(
    JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=8,
)
HUGE_OR_EMPTY = st.sampled_from(
    [
        {"prompt": ""},
        {"prompt": "x" * 5000},
        {"prompt": "   "},
        {"image_uri": "https://x/" + "a" * 5000},
        {"metadata": {f"k{i}": "v" * 200 for i in range(40)}},
        {"metadata": {"k": "v" * 10_000}},
        {"backends": ["runway"] * 11},
        {"backends": []},
        {"tenant": "T" * 100},
    ]
)
WRONG_TYPES = st.dictionaries(
    st.sampled_from(
        [
            *("prompt", "duration_s", "quality_min", "max_cost_usd", "priority", "backends"),
            *("tenant", "metadata", "image_uri", "aspect_ratio", "resolution", "surprise"),
        ]
    ),
    JSON_ANY,
    min_size=1,
    max_size=3,
)


def _request(job_id, override: dict) -> bytes:
    return json.dumps({**VALID, "job_id": job_id, **override}).encode()


ANY_ID = st.one_of(GOOD_IDS, GOOD_IDS, BAD_IDS)
REQUEST_SHAPED = st.builds(_request, ANY_ID, WRONG_TYPES) | st.builds(
    _request, ANY_ID, HUGE_OR_EMPTY
)
PAYLOADS = st.one_of(
    st.binary(max_size=200),
    JSON_ANY.map(lambda v: json.dumps(v).encode()),
    REQUEST_SHAPED,
    REQUEST_SHAPED,
    REQUEST_SHAPED,
    st.builds(lambda d, n: d[:n], st.builds(_request, GOOD_IDS, WRONG_TYPES), st.integers(0, 60)),
)
EDGE_CASES = [
    b"[" * 100_000,
    b'{"job_id": "deep", "prompt": ' + b"[" * 100_000 + b"}",
    b'{"job_id": "dup", "prompt": "a", "prompt": ""}',
    b'{"job_id": "nan", "prompt": "a", "quality_min": NaN}',
    b'{"job_id": "big", "prompt": "a", "duration_s": 1' + b"0" * 5000 + b"}",
    b'{"job_id": "bom", "prompt": "a"}'.decode().encode("utf-16"),
    b'{"job_id": "bad-utf8", "prompt": "\xff"}',
]


def usable_job_id(data: bytes) -> str | None:
    """Independent of the router: the job_id a rejection could be addressed to, if any."""
    try:
        body = json.loads(data)
    except (ValueError, RecursionError):
        return None
    job_id = body.get("job_id") if isinstance(body, dict) else None
    return job_id if isinstance(job_id, str) and re.fullmatch(JOB_ID_PATTERN, job_id) else None


def assert_answered_once_and_nothing_else_stored(data: bytes) -> None:
    # GIVEN a fresh embedded system
    app = embedded_app(Settings(poll_interval_s=0.0), workers=1)
    try:
        try:
            request = JobRequest.model_validate_json(data)
        except ValidationError:
            request = None
        job_id = usable_job_id(data)

        # WHEN the router is handed the raw message (no exception may escape)
        app.router.handle(data, {})
        assert app.bus.drain(10)

        events = [json.loads(m.data) for m in app.bus.published["job-events"]]
        dead = app.bus.published["dead-letter"]
        if request is not None:
            # THEN (valid by chance) it was admitted or refused as a job, like any other
            assert app.store.get("jobs", request.job_id) is not None
            return
        # THEN an invalid message is answered exactly once, on the right channel
        if job_id is None:
            assert events == []
            assert [m.data for m in dead] == [data]
            assert dead[0].attributes["reason"] == "invalid"
        else:
            assert dead == []
            [rejected] = events
            assert (rejected["type"], rejected["job_id"], rejected["reason"]) == (
                "job.rejected",
                job_id,
                "invalid",
            )
            assert rejected["message"]
            # AND its job is REJECTED, saying why (``aiprod status`` explains it)
            [job] = app.store.list("jobs")
            assert (job["job_id"], job["status"], job["reason"]) == (job_id, "REJECTED", "invalid")
            assert job["message"] == rejected["message"]
        if job_id is None:
            assert app.store.list("jobs") == []
        # AND nothing else reached the store or any render topic
        for collection in ("ledger", "backends"):
            assert app.store.list(collection) == []
        assert not any(app.bus.published[f"render-{b}"] for b in ("runway", "veo", "replicate"))
    finally:
        app.bus.close()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=PAYLOADS)
def test_invalid_job_message_gets_one_answer_and_writes_only_its_rejection(data):
    event(f"has a usable job_id: {usable_job_id(data) is not None}")
    assert_answered_once_and_nothing_else_stored(data)


@pytest.mark.parametrize("data", EDGE_CASES, ids=lambda d: repr(d[:30]))
def test_pathological_job_message_gets_one_answer_and_writes_only_its_rejection(data):
    assert_answered_once_and_nothing_else_stored(data)
