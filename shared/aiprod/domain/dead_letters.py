"""A dead-lettered message as the inbox keeps it: where it came from, why, and its payload.

Pure: how a received message is described (reason, source topic, delivery count), how it is
stored (UTF-8 text as is, anything else in base64), and which attributes a replay restores.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field

PUBSUB_ATTRIBUTES = "CloudPubSubDeadLetter"  # every attribute Pub/Sub adds starts so
SOURCE_SUBSCRIPTION = "CloudPubSubDeadLetterSourceSubscription"
DELIVERY_COUNT = "CloudPubSubDeadLetterSourceDeliveryCount"
OURS = ("reason", "source")  # set by our functions (and the embedded bus) when they dead-letter
# A document holds at most 1 MiB and a Pub/Sub message up to 10 MB: past this only the head is
# kept (base64 grows it by a third), so one oversized message cannot jam the inbox.
MAX_KEPT_BYTES = 512 * 1024


@dataclass(frozen=True)
class DeadLetter:
    id: str
    data: bytes
    size: int = 0  # of the message as received (``data`` may be only its head)
    attributes: dict[str, str] = field(default_factory=dict)
    source: str | None = None  # the unprefixed topic it was published to
    reason: str = "unknown"
    delivery_count: int | None = None
    source_subscription: str | None = None
    first_seen_at: float = 0.0
    replayed: bool = False
    replayed_at: float | None = None
    replay_message_id: str | None = None

    @property
    def truncated(self) -> bool:
        return len(self.data) < self.size

    @classmethod
    def received(cls, message, prefix: str, now: float) -> DeadLetter:
        """From a pulled ``ReceivedMessage`` (anything with data, attributes, message_id)."""
        attrs = dict(message.attributes)
        subscription = attrs.get(SOURCE_SUBSCRIPTION)
        count = _int(attrs.get(DELIVERY_COUNT))
        return cls(
            id=message.message_id or _digest(message.data, attrs),
            data=bytes(message.data[:MAX_KEPT_BYTES]),
            size=len(message.data),
            attributes=attrs,
            source=source_of(attrs, prefix),
            reason=reason_of(attrs, count, subscription),
            delivery_count=count,
            source_subscription=subscription,
            first_seen_at=now,
        )

    def original_attributes(self) -> dict[str, str]:
        """The attributes it was first published with, as a replay restores them."""
        return {
            k: v
            for k, v in self.attributes.items()
            if not k.startswith(PUBSUB_ATTRIBUTES) and k not in OURS
        }

    def preview(self, width: int = 40) -> str:
        try:
            text = " ".join(self.data.decode("utf-8").split())
        except UnicodeDecodeError:
            return f"<{self.size} bytes, binary>"
        return text if len(text) <= width else text[: width - 1] + "…"

    def to_doc(self) -> dict:
        try:
            data, encoding = self.data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            data, encoding = base64.b64encode(self.data).decode("ascii"), "base64"
        fields = {k: getattr(self, k) for k in self.__dataclass_fields__ if k != "data"}
        return {**fields, "data": data, "encoding": encoding, "truncated": self.truncated}

    @classmethod
    def from_doc(cls, doc: dict) -> DeadLetter:
        raw = doc["data"]
        data = base64.b64decode(raw) if doc.get("encoding") == "base64" else raw.encode("utf-8")
        fields = {k: doc[k] for k in cls.__dataclass_fields__ if k in doc and k != "data"}
        return cls(**{**fields, "data": data})


def source_of(attributes: dict[str, str], prefix: str) -> str | None:
    """The unprefixed topic: our ``source`` attribute, else from Pub/Sub's source
    subscription, named ``<prefix><topic>--<function>`` by the topology."""
    if attributes.get("source"):
        return attributes["source"].removeprefix(prefix)
    subscription = attributes.get(SOURCE_SUBSCRIPTION, "").rsplit("/", 1)[-1]
    if "--" not in subscription or not subscription.startswith(prefix):
        return None
    return subscription.removeprefix(prefix).rsplit("--", 1)[0]


def reason_of(attributes: dict[str, str], count: int | None, subscription: str | None) -> str:
    if attributes.get("reason"):
        return attributes["reason"]
    if count is None:
        return "unknown"
    return f"{count} failed deliveries" + (f" on {subscription}" if subscription else "")


def _int(text: str | None) -> int | None:
    try:
        return None if text is None else int(text)
    except ValueError:
        return None


def _digest(data: bytes, attributes: dict[str, str]) -> str:
    """An id for a message that came without one (never from Pub/Sub; from hand-made fakes)."""
    material = bytes(data) + repr(sorted(attributes.items())).encode()
    return "sha256-" + hashlib.sha256(material).hexdigest()[:32]
