"""An app on the embedded bus (one worker) and store, with a fake clock that polls never
wait on, reading ``gs://`` images from ``BUCKET`` only: the hostile-input scenarios
(tests/unit/test_hostile_inputs.py, tests/unit/test_review3.py)."""

from __future__ import annotations

from collections.abc import Iterator

from aiprod.adapters.embedded_bus import EmbeddedBus
from aiprod.adapters.embedded_store import EmbeddedStore
from aiprod.bootstrap import App
from aiprod.config import Settings
from fakes.clock import FakeClock

BUCKET = "aiprod-inputs"


def inputs_app() -> Iterator[App]:
    """The app (a generator: a fixture yields it and closes its bus after)."""
    clock = FakeClock()
    settings = Settings(poll_interval_s=0.0, image_buckets=frozenset({BUCKET}))
    built = App(
        settings, store=EmbeddedStore(), bus=EmbeddedBus(workers=1), clock=clock, sleep=clock.sleep
    )
    yield built
    built.bus.close()
