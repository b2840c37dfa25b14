"""The fault matrix of issue 10 ("Money truth"), as data: each fault, the providers it
applies to, how it is armed, and which of them fail on today's code and why (the test marks
those xfail, strict, so a fix flips them visibly). ``scenario`` runs one (fault, provider)
through ``support.fault_world`` and yields the world to check; the test and
``bench/faults.py`` share it.

Every job is pinned to the one provider under test, so what it is charged and what that
provider bills can be compared task by task.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiprod.adapters.image_fetch import ImageFetcher
from aiprod.adapters.veo import VeoBackend
from aiprod.repositories import jobs as job_records
from fakes.base import Drip, FakeServer, Reply, late
from fakes.clock import FakeClock
from fakes.storage import StorageEmulator
from fakes.tls import self_signed
from support.fault_world import World, build_pipeline, drive, environment, opened

ALL = ("runway", "veo", "replicate")
REQUESTS: dict[str, dict[str, Any]] = {
    "runway": {"backends": ["runway"]},
    "veo": {"backends": ["veo"], "duration_s": 8},
    "replicate": {"backends": ["replicate"]},
}
POLL_ROUTE = {"runway": "task", "veo": "operation", "replicate": "prediction"}
GATEWAY_PAGE = b"<html><body><h1>%d</h1>The gateway lost the upstream's answer.</body></html>"
HANG_S = 3.0  # longer than the fakes' provider timeout (2 s; Replicate's create waits 2.5 s)


@dataclass(frozen=True)
class Fault:
    name: str
    providers: tuple[str, ...]
    arm: Callable[[World], None] = lambda world: None  # before the jobs are published
    after: Callable[[World], None] = lambda world: None  # after they ran, before sweeping
    env: Callable[[Path], dict[str, str]] = lambda folder: {}
    jobs: int = 1
    unfindable: frozenset[str] = frozenset()  # a hold may be charged: recorded ≥ billed
    failing: Mapping[str, str] = field(default_factory=dict)  # provider → reason, today


def _lost(status: int) -> Callable[[World], None]:
    """The provider creates the task, a gateway answers ``status`` instead of its id."""

    def arm(world: World) -> None:
        page = Reply(status, GATEWAY_PAGE % status, {"content-type": "text/html"}, lost_answer=True)
        world.fake.queue("create", page)

    return arm


def _hang(world: World) -> None:
    world.fake.queue("create", Reply(200, {}, delay_s=HANG_S, lost_answer=True))


def _answer_after_lease(world: World) -> None:
    """The create is answered only after the lease ran out and the reconciler swept."""

    def meanwhile() -> None:
        world.clock.advance(world.pipeline.app.settings.lease_s + 1)
        world.sweep()
        world.fault_at = world.clock.now  # the answer arrives now

    world.fake.queue("create", late(meanwhile))


def _garbled_polls(world: World) -> None:
    json_type = {"content-type": "application/json"}
    replies = [Reply(200, b'{"status": "SUCC', json_type), Reply(200, ["not", "a", "task"])]
    world.fake.queue(POLL_ROUTE[world.provider], *replies)


def _slow_renders(world: World) -> None:
    world.fake.polls_before_done = 10**6  # both renders outlive the render deadline


def _garble_first_job(world: World) -> None:
    """j1's document stops decoding while its render runs on; both renders then finish."""
    store = world.pipeline.store
    world.fault_at = world.clock.now
    before = world.pipeline.job("j1")
    world.notes["quarantined_hold"] = sum(a["hold_micros"] for a in before["attempts"])
    store.set(job_records.COLLECTION, "j1", {**world.pipeline.job("j1"), "attempts": "garbled"})
    world.fake.finish_all()


def _outputs_500(world: World) -> None:
    world.fake.outputs_status = 500


def _slow_image(world: World) -> None:
    """An https image URL that drips its bytes: 8 chunks, one every 0.5 s (4 s in all)."""
    cert, key = self_signed(world.folder)
    files = FakeServer().serve_tls(cert, key).start()
    files.drips["slow.png"] = Drip(b"\x89PNG\r\n\x1a\n" + bytes(504), chunk=64, every_s=0.5)
    world.cleanups.append(files.stop)
    # the job names a public-looking host (validation refuses 127.0.0.1); only here does it
    # resolve to the fake, which the fetcher is allowed to reach
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False  # the certificate names 127.0.0.1, not the host
    port = int(files.url.rsplit(":", 1)[1])
    VeoBackend.image_fetcher = ImageFetcher(
        resolver=lambda host, _port: ["127.0.0.1"],
        allow=frozenset({"127.0.0.1"}),
        ssl_context=context,
        connect_port=port,
    )
    world.cleanups.append(lambda: setattr(VeoBackend, "image_fetcher", ImageFetcher()))
    world.request_extra["image_uri"] = "https://images.example.com/files/slow.png"
    world.notes["drip"] = files.drips["slow.png"]


def _tls_env(folder: Path) -> dict[str, str]:
    return {"REQUESTS_CA_BUNDLE": str(folder / "fake-tls.crt")}


def _killed_env(folder: Path) -> dict[str, str]:
    return {
        "AIPROD_FAULTS": "render.after_create=raise:1.0",
        "AIPROD_FAULTS_DIR": str(folder / "failpoints"),
    }


FAULTS = (
    Fault(
        "bucket_missing",
        ALL,
        env=lambda folder: {"AIPROD_OUTPUT_BUCKET": "aiprod-no-such-bucket"},
    ),
    Fault("output_url_500", ("runway", "replicate"), _outputs_500),
    Fault(
        "create_502_lost",
        ALL,
        _lost(502),
        unfindable=frozenset({"runway", "veo"}),
    ),
    Fault(
        "create_504_lost",
        ALL,
        _lost(504),
        unfindable=frozenset({"runway", "veo"}),
    ),
    Fault("create_timeout_lost", ALL, _hang, unfindable=frozenset(ALL)),
    Fault("killed_after_create", ALL, env=_killed_env, unfindable=frozenset({"runway", "veo"})),
    Fault("answered_after_lease", ALL, _answer_after_lease),
    Fault("poll_garbled", ALL, _garbled_polls),
    Fault(
        "unreadable_job",
        ALL,
        _slow_renders,
        _garble_first_job,
        jobs=2,
        # j1's hold stays held for an operator (nothing can settle an unreadable job)
        unfindable=frozenset(ALL),
    ),
    Fault("slow_drip_image", ("veo",), _slow_image, env=_tls_env),
)
BY_NAME = {fault.name: fault for fault in FAULTS}


def matrix() -> list[tuple[Fault, str]]:
    """Every (fault, provider) the matrix runs."""
    return [(fault, provider) for fault in FAULTS for provider in fault.providers]


@contextmanager
def scenario(
    fault: Fault, provider: str, storage: StorageEmulator, folder: Path
) -> Iterator[World]:
    """Run one scenario to its end (every job over, or given up on) and yield its world."""
    with (
        opened(provider, storage, folder) as fakes,
        environment({**fakes.env(), **fault.env(folder)}),
    ):
        clock = FakeClock()
        world = World(fakes, build_pipeline(clock, dict(os.environ)), clock, provider, folder)
        try:
            world.request_extra.update(REQUESTS[provider])
            fault.arm(world)
            world.start = clock.now
            world.pipeline.run(*world.requests(fault.jobs))
            fault.after(world)
            drive(world)
            yield world
        finally:
            world.pipeline.bus.close()
            for cleanup in world.cleanups:
                cleanup()
