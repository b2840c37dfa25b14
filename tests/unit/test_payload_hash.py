"""The payload hash is canonical (issue 12, part 2): the same request in other words hashes
the same, a new defaulted field changes no hash, and jobs stored with the hash of before
still recognise their redeliveries."""

from __future__ import annotations

import hashlib
import json

from aiprod.domain import payloads
from aiprod.domain.messages import JobRequest
from support.scenarios import TEXT

MINIMAL = {"job_id": "j1", "prompt": "a cat walks on a piano"}


def parse(body: dict) -> JobRequest:
    return JobRequest.model_validate_json(json.dumps(body))


def legacy(body: dict) -> str:
    """The hash stored before v2, computed as the old code did."""
    dumped = parse(body).model_dump(mode="json")
    return hashlib.sha256(
        json.dumps(dumped, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def test_the_hash_is_pinned_to_what_the_client_sent():
    # GIVEN the minimal request THEN its hash is the sha256 of its two fields, versioned (a
    # change to this value is a change of hash version: see domain/payloads.py)
    digest = hashlib.sha256(b'{"job_id":"j1","prompt":"a cat walks on a piano"}').hexdigest()
    assert parse(MINIMAL).payload_hash() == "v2:" + digest


def test_the_order_of_backends_is_not_part_of_the_hash():
    # GIVEN the same allow-list in another order, and with a name repeated
    one = parse({**MINIMAL, "backends": ["veo", "runway"]})
    two = parse({**MINIMAL, "backends": ["runway", "veo", "runway"]})

    # THEN they hash the same, and unlike another allow-list
    assert one.payload_hash() == two.payload_hash()
    assert one.payload_hash() != parse({**MINIMAL, "backends": ["veo"]}).payload_hash()


def test_defaults_written_out_or_left_out_hash_the_same():
    spelled = {
        **MINIMAL,
        "duration_s": 5,
        "aspect_ratio": "16:9",
        "resolution": "720p",
        "quality_min": 0,
        "priority": "quality",
        "image_uri": None,
        "max_cost_usd": None,
        "backends": None,
        "tenant": None,
        "metadata": {},
    }
    assert parse(spelled).payload_hash() == parse(MINIMAL).payload_hash()
    assert parse({**MINIMAL, "max_cost_usd": 2}).payload_hash() == (
        parse({**MINIMAL, "max_cost_usd": 2.0}).payload_hash()
    )


def test_a_new_defaulted_field_changes_no_existing_hash():
    # GIVEN the contract of a later release, with one more defaulted field
    class Later(JobRequest):
        seed: int | None = None

    # THEN a message that does not use it hashes as it did
    assert Later.model_validate(TEXT).payload_hash() == parse(TEXT).payload_hash()
    assert Later.model_validate({**TEXT, "seed": 7}).payload_hash() != parse(TEXT).payload_hash()


def test_a_job_stored_with_the_legacy_hash_recognises_its_redelivery():
    # GIVEN a job stored before v2, with the legacy hash of its request
    stored = legacy(TEXT)

    # THEN the same request matches it, and another request does not
    assert parse(TEXT).same_payload(stored)
    assert not parse({**TEXT, "prompt": "another"}).same_payload(stored)


def test_an_invalid_message_hash_matches_only_the_same_bytes():
    data = b'{"job_id": "j1", "prompt": ""}'
    stored = payloads.raw_payload_hash(data)
    assert stored == payloads.raw_payload_hash(data)
    assert stored.startswith("raw:")
    assert not parse(MINIMAL).same_payload(stored)


def test_a_job_stored_before_v2_is_not_a_conflict_for_its_redelivered_message(pipeline):
    # GIVEN a completed job stored with the legacy hash (admitted before the deploy)
    p = pipeline()
    p.run(TEXT)
    p.store.set("jobs", "t1", {**p.job("t1"), "payload_hash": legacy(TEXT)})
    before = len(p.events())

    # WHEN its message is delivered again after the deploy THEN it is a duplicate: no event
    p.run(TEXT)
    assert len(p.events()) == before

    # AND another request under that job_id is still a conflict
    p.run({**TEXT, "prompt": "another prompt"})
    assert len(p.events("job.duplicate_rejected", "t1")) == 1


def test_a_reordered_allow_list_is_a_redelivery_not_a_conflict(pipeline):
    # GIVEN a completed job that listed its backends
    p = pipeline()
    p.run({**TEXT, "backends": ["runway", "replicate"]})
    before = len(p.events())

    # WHEN the same request arrives with its allow-list in another order
    p.run({**TEXT, "backends": ["replicate", "runway"]})

    # THEN it is a duplicate: nothing is published, nothing rendered again
    assert len(p.events()) == before
    assert len(p.submitted("runway")) == 1
