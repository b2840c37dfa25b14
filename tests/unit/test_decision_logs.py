"""Each rejection, fallback, circuit change and overrun is logged once, with its reason and
the job, attempt and backend, as one JSON line Cloud Logging reads (issue: structured logs).
"""

from __future__ import annotations

import json
import logging

from aiprod import logs

TEXT = {"job_id": "t1", "prompt": "a paper boat in the rain"}


def lines(caplog, event: str | None = None, reason: str | None = None) -> list[dict]:
    """The captured records as Cloud Logging would get them, filtered by event / reason."""
    formatter = logs.CloudLoggingFormatter("p1")
    found = [json.loads(formatter.format(r)) for r in caplog.records]
    return [
        entry
        for entry in found
        if (event is None or entry.get("event") == event)
        and (reason is None or entry.get("reason") == reason)
    ]


def test_fallbacks_and_the_circuit_change_are_logged_once_with_their_reason(pipeline, caplog):
    # GIVEN runway down: three jobs fail over, the third failure opens runway's circuit
    p = pipeline(workers=1, simulation={"runway": {"down": True}})
    caplog.set_level(logging.INFO)

    for i in range(3):
        p.run({**TEXT, "job_id": f"f{i}"})

    fallbacks = lines(caplog, event="fallback")
    assert sorted(e["job_id"] for e in fallbacks) == ["f0", "f1", "f2"]
    assert all((e["backend"], e["attempt"], e["reason"]) == ("runway", 1, "unavailable")
               for e in fallbacks)  # fmt: skip
    [change] = lines(caplog, event="circuit_change")
    assert change["backend"] == "runway" and change["reason"] == "unavailable"
    assert change["severity"] == "WARNING" and "closed -> open" in change["message"]


def test_each_rejection_is_logged_once_with_its_reason(pipeline, caplog):
    p = pipeline(workers=1, global_limit_micros=100_000)
    caplog.set_level(logging.INFO)

    p.run({"job_id": "bad", "prompt": ""}, TEXT, {**TEXT, "prompt": "another"}, TEXT)

    assert [e["job_id"] for e in lines(caplog, reason="invalid")] == ["bad"]
    assert [e["job_id"] for e in lines(caplog, reason="conflict")] == ["t1"]
    # AND the redelivered request found its job: nothing else was logged with a reason
    router = [e for e in lines(caplog) if e["logger"] == "aiprod.services.router"]
    assert [e["reason"] for e in router if "reason" in e] == ["invalid", "conflict"]
