"""The JobRequest wire contract: what clients may send, and what is refused with a reason."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from aiprod.domain.messages import MAX_METADATA_KEYS, JobRequest, Priority
from aiprod.domain.money import usd


def parse(body: dict) -> JobRequest:
    return JobRequest.model_validate_json(json.dumps(body))


def test_full_request_fixture_is_accepted_field_for_field(load_fixture):
    # GIVEN a request that sets every field
    body = load_fixture("job_request_full.json")

    # WHEN it is parsed from the wire
    request = parse(body)

    # THEN every value is kept as sent
    assert request.model_dump(mode="json") == body
    assert request.priority is Priority.SPEED
    assert request.input_kind == "image"
    assert request.max_cost_micros == 5_500_000


def test_minimal_request_gets_the_documented_defaults(load_fixture):
    # GIVEN only the two required fields
    request = parse(load_fixture("job_request_minimal.json"))

    # THEN the defaults are a 5 s, 16:9, 720p text render ranked by quality, with no limits
    assert (request.duration_s, request.aspect_ratio, request.resolution) == (5, "16:9", "720p")
    assert request.priority is Priority.QUALITY
    assert request.input_kind == "text"
    assert request.quality_min == 0.0
    assert request.max_cost_micros is None
    assert (request.backends, request.tenant, request.metadata) == (None, None, {})


BAD_FIELDS = {
    "unknown field": {"colour": "red"},
    "duration as string": {"duration_s": "5"},
    "duration as float": {"duration_s": 5.5},
    "duration as whole float": {"duration_s": 5.0},
    "duration as bool": {"duration_s": True},
    "duration zero": {"duration_s": 0},
    "duration over a minute": {"duration_s": 61},
    "job_id with slash": {"job_id": "a/b"},
    "job_id dot-dot": {"job_id": ".."},
    "job_id dot": {"job_id": "."},
    "job_id dunder": {"job_id": "__name__"},
    "job_id empty": {"job_id": ""},
    "job_id too long": {"job_id": "x" * 129},
    "job_id with space": {"job_id": "a b"},
    "job_id as number": {"job_id": 7},
    "prompt empty": {"prompt": ""},
    "prompt whitespace": {"prompt": " \t\n "},
    "prompt too long": {"prompt": "x" * 2001},
    "prompt missing": {"prompt": None},
    "image_uri http": {"image_uri": "http://example.com/a.png"},
    "image_uri file": {"image_uri": "file:///etc/passwd"},
    "image_uri data": {"image_uri": "data:image/png;base64,AAAA"},
    "image_uri s3": {"image_uri": "s3://bucket/a.png"},
    "image_uri too long": {"image_uri": "https://x/" + "a" * 2048},
    "aspect ratio": {"aspect_ratio": "4:3"},
    "resolution": {"resolution": "4k"},
    "quality above 1": {"quality_min": 1.5},
    "quality negative": {"quality_min": -0.1},
    "max cost zero": {"max_cost_usd": 0},
    "max cost negative": {"max_cost_usd": -1.0},
    "max cost as string": {"max_cost_usd": "5"},
    "priority": {"priority": "fast"},
    "backends empty": {"backends": []},
    "backends as string": {"backends": "runway"},
    "metadata too many keys": {"metadata": {f"k{i}": "v" for i in range(MAX_METADATA_KEYS + 1)}},
    "metadata too big": {"metadata": {"notes": "x" * 5000}},
    "metadata non-string value": {"metadata": {"n": 1}},
    "tenant uppercase": {"tenant": "Acme"},
    "tenant with space": {"tenant": "a b"},
    "tenant leading dash": {"tenant": "-acme"},
    "tenant too long": {"tenant": "a" * 64},
    "tenant empty": {"tenant": ""},
}


@pytest.mark.parametrize("override", BAD_FIELDS.values(), ids=BAD_FIELDS.keys())
def test_bad_value_is_rejected(load_fixture, override):
    # GIVEN a valid request with one field made bad
    body = {**load_fixture("job_request_minimal.json"), **override}
    body = {k: v for k, v in body.items() if v is not None}

    # WHEN / THEN parsing refuses it with a validation error
    with pytest.raises(ValidationError):
        parse(body)


GOOD_EDGES = {
    "job_id of 128 chars": {"job_id": "x" * 128},
    "job_id with dots inside": {"job_id": "a..b"},
    "prompt of 2000 chars": {"prompt": "x" * 2000},
    "https image": {"image_uri": "https://example.com/a.png"},
    "gs image": {"image_uri": "gs://bucket/a.png"},
    "integer max cost": {"max_cost_usd": 5},
    "metadata at the key limit": {"metadata": {f"k{i}": "v" for i in range(MAX_METADATA_KEYS)}},
    "tenant of 63 chars": {"tenant": "a" * 63},
    "duration 60": {"duration_s": 60},
}


@pytest.mark.parametrize("override", GOOD_EDGES.values(), ids=GOOD_EDGES.keys())
def test_values_at_the_limits_are_accepted(load_fixture, override):
    # GIVEN a request with one field at the edge of what is allowed
    body = {**load_fixture("job_request_minimal.json"), **override}

    # WHEN it is parsed THEN it is kept
    request = parse(body)
    for name, value in override.items():
        assert getattr(request, name) == value


def test_payload_hash_ignores_key_order_and_spelled_out_defaults(load_fixture):
    # GIVEN the same request with its keys reversed, and with its defaults written out
    body = load_fixture("job_request_full.json")
    reversed_body = dict(reversed(list(body.items())))
    minimal = load_fixture("job_request_minimal.json")
    explicit = {**minimal, "duration_s": 5, "priority": "quality", "metadata": {}}

    # THEN each pair fingerprints the same
    assert parse(body).payload_hash() == parse(reversed_body).payload_hash()
    assert parse(minimal).payload_hash() == parse(explicit).payload_hash()


def test_payload_hash_tells_different_requests_apart(load_fixture):
    # GIVEN two requests that differ in one field
    body = load_fixture("job_request_full.json")
    other = {**body, "prompt": body["prompt"] + "!"}

    # THEN their fingerprints differ
    assert parse(body).payload_hash() != parse(other).payload_hash()
    assert len(parse(body).payload_hash()) == len("v2:") + 64


@pytest.mark.parametrize(
    ("micros", "text"),
    [
        (0, "0.000000"),
        (1, "0.000001"),
        (999_999, "0.999999"),
        (1_000_000, "1.000000"),
        (1_500_000, "1.500000"),
        (123_456_789, "123.456789"),
        (-1, "-0.000001"),
        (-2_500_000, "-2.500000"),
    ],
)
def test_usd_formats_micros_exactly(micros, text):
    assert usd(micros) == text


@pytest.mark.parametrize(("usd_in", "micros"), [(0.1, 100_000), (5.5, 5_500_000), (1e-6, 1)])
def test_max_cost_is_rounded_to_whole_micros(load_fixture, usd_in, micros):
    # GIVEN a cap in dollars that has no exact binary float
    request = parse({**load_fixture("job_request_minimal.json"), "max_cost_usd": usd_in})

    # THEN the cap in micro-USD is the nearest integer, not a truncation
    assert request.max_cost_micros == micros
