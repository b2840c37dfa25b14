"""The payload hash: what tells a redelivery of a job message from a reused ``job_id``. Pure.

``v2:`` hashes (since issue 12) are canonical, so two messages that mean the same request
hash the same:

- only what differs from a default is hashed (``exclude_defaults``): a field written out with
  its default value hashes like the field left out, and adding a new defaulted field to the
  contract leaves every existing message's hash unchanged (so a message in flight across
  that deploy is still a redelivery, not a conflict). ``exclude_unset`` was not chosen: it
  would tell ``{"duration_s": 5}`` from ``{}``, which mean the same job. The price: changing
  a default's *value* would change the hash of a message that spelled out the old default;
  that is a contract change, and comes with a new hash version (see ``same_payload``);
- a list field marked ``UNORDERED`` in the contract is hashed sorted and deduplicated:
  ``backends`` is an allow-list (``selection.candidates`` reads it as a set; the chain's
  order comes from ``priority`` and the catalog's fallback order);
- ``metadata`` keys are sorted like every other key.

Jobs stored before ``v2`` carry the legacy hash (64 hex digits, no prefix: the full request
with its resolved defaults). ``same_payload`` compares a message with a stored job in the
stored job's own version, so a redelivery of an old message after the deploy still matches
its job, and a different request still conflicts. (The legacy hash is exact only while the
contract has the fields it had when the job was stored; the ``v2`` change adds none. Once no
message from before ``v2`` can be delivered any more, past Pub/Sub's retention and the
dead-letter topic's, the legacy branch may go.)

An invalid message that names a usable ``job_id`` is stored as a REJECTED job whose hash is
``raw:`` over the message's bytes: it matches the same invalid message delivered again
(Pub/Sub redelivers the same bytes) and never a valid request.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiprod.domain.messages import JobRequest

VERSION = "v2:"
RAW = "raw:"


class _Unordered:
    """Marks a list field of the contract whose order carries no meaning: hashed as a set."""

    def __repr__(self) -> str:
        return "UNORDERED"


UNORDERED = _Unordered()


def payload_hash(request: JobRequest) -> str:
    """The canonical hash of a valid request (``v2:`` + 64 hex digits)."""
    body = request.model_dump(mode="json", exclude_defaults=True)
    for name, field in type(request).model_fields.items():
        if UNORDERED in field.metadata and body.get(name) is not None:
            body[name] = sorted(set(body[name]))
    return VERSION + _digest(body)


def legacy_payload_hash(request: JobRequest) -> str:
    """The hash stored on jobs admitted before ``v2``: every field, defaults resolved."""
    return _digest(request.model_dump(mode="json"))


def raw_payload_hash(data: bytes) -> str:
    """The hash of an invalid message, as it arrived (``raw:`` + 64 hex digits)."""
    return RAW + hashlib.sha256(data).hexdigest()


def same_payload(stored: str, request: JobRequest) -> bool:
    """Is ``request`` the payload a job was stored with, in that job's hash version?"""
    if stored.startswith(VERSION):
        return stored == payload_hash(request)
    if stored.startswith(RAW):
        return False  # stored from an invalid message: a valid one is another payload
    return stored == legacy_payload_hash(request)


def _digest(body: object) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()
