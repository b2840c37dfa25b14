"""A clock that tests move by hand: services read it and sleep on it, and time passes only
when a test (or a service's ``sleep``) advances it."""

from __future__ import annotations

import threading

T0 = 1_800_000_000.0  # 2027-01-15T08:00:00Z


class FakeClock:
    """Time that moves only when a test (or a service's sleep) moves it."""

    def __init__(self, start: float = T0):
        self.start = self.now = start
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.advance(max(0.0, seconds))

    def advance(self, seconds: float) -> None:
        with self._lock:
            self.now += seconds
