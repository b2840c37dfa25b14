"""One function process builds one App and one adapter per backend, even when its first
messages arrive together (functions-framework serves each push on its own thread).

Found by the e2e duplicates scenario: the render process's first two deliveries built two
provider adapters, so the process held two sets of clients and two submit counters. The
delay below stands in for the real first-use cost (settings, logging setup, an SDK import).
"""

from __future__ import annotations

import threading
import time

import pytest

from aiprod import bootstrap
from aiprod.config import Settings

THREADS = 8


def all_at_once(call) -> list[object]:
    """Call ``call`` from THREADS threads released together; return what each got."""
    start, got = threading.Barrier(THREADS), []

    def run() -> None:
        start.wait()
        got.append(call())

    pool = [threading.Thread(target=run) for _ in range(THREADS)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=10)
    return got


@pytest.fixture
def fresh_cloud_app(monkeypatch):
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "bootstrap-test")
    monkeypatch.setattr(bootstrap.logs, "configure", lambda *args, **kwargs: None)
    bootstrap.cloud_app.cache_clear()
    yield
    bootstrap.cloud_app.cache_clear()


def test_concurrent_first_messages_share_one_app(fresh_cloud_app, monkeypatch):
    # GIVEN building the settings takes a moment on first use
    real = Settings.from_env

    def slow_from_env(*args, **kwargs):
        time.sleep(0.01)
        return real(*args, **kwargs)

    monkeypatch.setattr(bootstrap.Settings, "from_env", slow_from_env)

    # WHEN eight deliveries ask for the process's app at once
    apps = all_at_once(bootstrap.cloud_app)

    # THEN they all got the same one
    assert len({id(app) for app in apps}) == 1


def test_concurrent_first_renders_share_one_provider_adapter(monkeypatch):
    # GIVEN building a provider adapter takes a moment on first use
    real = bootstrap.make_backend

    def slow_make_backend(*args, **kwargs):
        time.sleep(0.01)
        return real(*args, **kwargs)

    monkeypatch.setattr(bootstrap, "make_backend", slow_make_backend)
    app = bootstrap.App(Settings(), store=object(), bus=object())

    # WHEN eight deliveries ask for the replicate renderer at once
    renderers = all_at_once(lambda: app.renderer("replicate"))

    # THEN they share one renderer and one adapter
    assert len({id(renderer) for renderer in renderers}) == 1
    assert len({id(renderer._backend) for renderer in renderers}) == 1
