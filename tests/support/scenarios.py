"""Requests and readers the embedded-pipeline scenarios share (tests/unit/test_pipeline_*.py,
the reconciler's scenarios)."""

from __future__ import annotations

TEXT = {"job_id": "t1", "prompt": "a paper boat in the rain", "metadata": {"campaign": "x"}}
IMAGE = {"job_id": "i1", "prompt": "the bottle turns", "image_uri": "gs://assets/bottle.png"}


CLOSED = {
    "backend": "runway",
    "state": "closed",
    "consecutive_failures": 0,
    "trips": 0,
    "open_until": 0.0,
    "probe_started_at": None,
    "last_error": None,
}


def runway_job(i: int) -> dict:
    """A job pinned to runway (the render queue's scenarios)."""
    return {"job_id": f"q{i}", "prompt": f"a paper boat {i}", "backends": ["runway"]}


def attempts(job: dict) -> list[tuple[str, str]]:
    return [(a["backend"], a["state"]) for a in job["attempts"]]


def queue_job(job_id: str, tenant: str | None = None, **fields) -> dict:
    """A job request for the render queue's scenarios (of ``tenant`` when given)."""
    request = {"job_id": job_id, "prompt": f"a paper boat {job_id}", **fields}
    return {**request, "tenant": tenant} if tenant else request


def start_order(p, backend: str) -> list[str]:
    """Job ids in the order their renders were created on ``backend``."""
    owner = {
        a["provider_task_id"]: j["job_id"]
        for j in p.jobs()
        for a in j["attempts"]
        if a.get("provider_task_id")
    }
    return [owner[task] for task in p.submitted(backend)]
