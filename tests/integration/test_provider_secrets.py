"""No API key or token in any log line, event or job document of a succeeding and a failing
render, on every provider, with every logger (the SDKs' and httpx's included) at DEBUG."""

from __future__ import annotations

import io
import json
import logging

import pytest

from aiprod import logs
from aiprod.config import ProviderSettings
from fakes.base import Reply


@pytest.fixture
def all_logs(caplog):
    """Every record at DEBUG, also rendered by the deployed JSON formatter (with extras)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.CloudLoggingFormatter("test-project"))
    root = logging.getLogger()
    root.addHandler(handler)
    caplog.set_level(logging.DEBUG)
    yield (
        lambda: (
            stream.getvalue()
            + "\n".join(f"{r.name} {r.getMessage()} {r.exc_text or ''}" for r in caplog.records)
        )
    )
    root.removeHandler(handler)


@pytest.mark.parametrize("backend", ["runway", "veo", "replicate"])
def test_no_secret_in_logs_events_or_documents(pipeline, live_env, fakes, all_logs, backend):
    # GIVEN one render that succeeds, one refused at create, one that fails as a task
    fake = getattr(fakes, backend)
    p = pipeline(workers=1, provider_mode="live", providers=ProviderSettings.from_env(live_env.get))
    job = {"prompt": "a lantern", "backends": [backend], "duration_s": 8 if backend == "veo" else 5}
    p.run({**job, "job_id": "ok"})
    fake.queue("create", Reply(401, {"error": "Invalid API key"}))
    p.run({**job, "job_id": "refused"})
    fake.final = {"runway": "FAILED", "veo": "ERROR", "replicate": "failed"}[backend]
    p.run({**job, "job_id": "failed"})

    # THEN the renders did what they say, and logged plenty (the SDKs' debug lines too)
    statuses = {j["job_id"]: j["status"] for j in p.jobs()}
    assert statuses == {"ok": "SUCCEEDED", "refused": "FAILED", "failed": "FAILED"}
    output = all_logs()
    assert "HTTP Request" in output or "Sending HTTP Request" in output

    # AND no secret appears anywhere a person or a log pipeline can read
    published = json.dumps([m.data.decode() for ms in p.bus.published.values() for m in ms])
    documents = json.dumps(p.jobs())
    for secret in fakes.secrets():
        for where, text in (("logs", output), ("events", published), ("jobs", documents)):
            assert secret not in text, f"a secret leaked into {where}"
