"""Holding a function's push subscription on the emulator, so its messages queue up.

``ModifyPushConfig`` with an empty config turns a push subscription into a pull one: Pub/Sub
keeps what is published and delivers it once the endpoint is set again. Scenarios use it to
fix an order that would otherwise be a race (every job admitted before any render reports).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from aiprod import topology

if TYPE_CHECKING:
    from aiprod_tools.stack.stack import EmulatorStack


def _subscription_paths(stack: EmulatorStack, function: str) -> list[str]:
    spec = topology.function(function)
    return [
        stack.bus.subscriber.subscription_path(
            stack.project, topology.qualified(stack.prefix, spec.lane_subscription(lane))
        )
        for lane in range(stack.bus.lanes)
    ]


def set_push(stack: EmulatorStack, function: str, endpoint: str | None) -> None:
    """Push ``function``'s messages (on each of its push lanes) to ``endpoint``, or hold them
    (None)."""
    config = {"push_endpoint": endpoint} if endpoint else {}
    for path in _subscription_paths(stack, function):
        stack.bus.subscriber.modify_push_config(
            request={"subscription": path, "push_config": config}
        )


@contextmanager
def push_paused(stack: EmulatorStack, *functions: str) -> Iterator[None]:
    """Within the block, messages for ``functions`` wait on Pub/Sub; after it they flow."""
    for function in functions:
        set_push(stack, function, None)
    try:
        yield
    finally:
        for function in functions:
            set_push(stack, function, stack.functions[function].url)
