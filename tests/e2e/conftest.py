"""E2E fixtures: ``make_stack`` starts an EmulatorStack (functions-framework processes wired
by push subscriptions) under a fresh project on the session's emulators, and stops it after
the test. When a test fails, each function's log is attached to the failure report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

import pytest

STACKS = pytest.StashKey[list]()


@pytest.fixture
def make_stack(request, emulators) -> Iterator[Callable[..., object]]:
    """``make_stack({"AIPROD_SIMULATION": "..."}, min_backoff_s=1)`` → a started stack."""
    from aiprod_tools.stack.stack import EmulatorStack

    stacks: list[EmulatorStack] = []
    request.node.stash[STACKS] = stacks

    def make(env: Mapping[str, str] | None = None, **options) -> EmulatorStack:
        stack = EmulatorStack(emulators, extra_env=env, **options)
        stacks.append(stack)
        return stack.start()

    yield make
    for stack in stacks:
        stack.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call" and report.failed:
        for stack in item.stash.get(STACKS, []):
            for name in stack.functions:
                report.sections.append((f"{stack.project} {name} log", stack.log(name, 60)))
    return report
