"""What ``aiprod dlq`` prints for people (``--json`` prints the data instead)."""

from __future__ import annotations

from aiprod.domain.dead_letters import DeadLetter
from aiprod_tools.views.tables import render_table


def dead_letters_table(letters: list[DeadLetter], now: float, collected: int) -> str:
    head = f"pulled {collected} new from the inbox; {len(letters)} stored, not yet replayed"
    if not letters:
        return head
    rows = [
        [
            x.id,
            x.source or "?",
            x.reason,
            x.delivery_count,
            age(now - x.first_seen_at),
            x.size,
            x.preview(),
        ]
        for x in letters
    ]
    headers = ["id", "source", "reason", "deliveries", "age", "bytes", "preview"]
    return "\n".join([head, "", render_table(headers, rows)])


def replayed_text(replayed: list[tuple[DeadLetter, str]], prefix: str) -> str:
    if not replayed:
        return "nothing to replay"
    lines = [
        f"replayed {x.id} to {prefix}{x.source} as message {message_id}"
        for x, message_id in replayed
    ]
    return "\n".join(lines)


def age(seconds: float) -> str:
    seconds = max(0, int(seconds))
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
