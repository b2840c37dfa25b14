"""Keeps a stack's functions running: a function process that dies is started again.

A ``Supervisor`` thread looks at every function process a few times a second. When one has
exited, it says so (a console line through ``notify`` and a structured ``WARNING`` log line,
``event="function_exited"``), starts the function again on the same port, so the push
subscriptions keep their endpoint (``EmulatorStack.restart``), and says when it answers again
(``event="function_restarted"``). A restart that fails is reported and tried again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from aiprod_tools.exceptions import EmulatorStartError

if TYPE_CHECKING:
    from aiprod_tools.stack.stack import EmulatorStack

log = logging.getLogger(__name__)
CHECK_EVERY_S = 0.2


class Supervisor:
    """``Supervisor(stack, notify=print).start()``; ``stop()`` before stopping the stack."""

    def __init__(
        self,
        stack: EmulatorStack,
        notify: Callable[[str], None] = print,
        check_every_s: float = CHECK_EVERY_S,
    ):
        self.stack = stack
        self.notify = notify
        self.restarts: dict[str, int] = {}
        self._every = check_every_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="aiprod-supervisor", daemon=True)

    def start(self) -> Supervisor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(self._every):
            for name, child in list(self.stack.functions.items()):
                if child.process.poll() is not None and not self._stop.is_set():
                    self._restart(name, child.process.returncode)

    def _restart(self, name: str, code: int | None) -> None:
        began = time.monotonic()
        self._say(logging.WARNING, f"{name} exited (code {code}); restarting it", name, code)
        try:
            child = self.stack.restart(name)
        except EmulatorStartError as exc:
            self._say(logging.ERROR, f"{name} did not restart: {exc}", name, code)
            return
        self.restarts[name] = self.restarts.get(name, 0) + 1
        took = time.monotonic() - began
        message = f"{name} restarted on {child.url} in {took:.1f} s"
        self._say(logging.INFO, message, name, code, restarted=True)

    def _say(self, level: int, message: str, name: str, code, restarted: bool = False) -> None:
        self.notify(f"aiprod dev: {message}")
        event = "function_restarted" if restarted else "function_exited"
        log.log(level, message, extra={"event": event, "reason": f"{name} exit code {code}"})
