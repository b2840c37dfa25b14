"""``aiprod jobs list`` and ``aiprod wait``: find jobs, follow one to its end.

``jobs list`` reads with one single-field range query (``created_at >= since``: Firestore's
automatic index, no composite index deployed), at most ``--limit`` documents, oldest first;
tenant and status are filtered in memory and the result is shown newest first. When the read
hit the limit, a line on stderr says so (narrow ``--since`` or raise ``--limit``).

``wait`` exit status: 0 SUCCEEDED, 3 FAILED, 4 REJECTED, 5 another final status (CANCELLED),
124 the timeout passed first (as ``timeout(1)``); 2 is bad usage, as for every command.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from aiprod_tools.cli import context
from aiprod_tools.exceptions import UsageError

EXIT = {"SUCCEEDED": 0, "FAILED": 3, "REJECTED": 4}
EXIT_OTHER_END, EXIT_TIMEOUT = 5, 124
POLL_S = 2.0


def add_list(sub, name: str) -> argparse.ArgumentParser:
    found = sub.add_parser(name, help="jobs created since a moment, newest first")
    found.add_argument("--tenant")
    found.add_argument("--status", type=str.upper, help="RUNNING, SUCCEEDED, FAILED, REJECTED…")
    found.add_argument("--since", default="24h", help="2h, 3d, 1w, 2026-11-30 or an ISO time")
    found.add_argument("--limit", type=int, default=1000, help="documents read at most")
    found.add_argument("--json", action="store_true", help="for tools")
    return found


def list_jobs(args: argparse.Namespace) -> int:
    from aiprod.repositories import jobs
    from aiprod_tools.views.listing import iso, job_row, jobs_table, since_moment

    app = context.make_app()
    try:
        since = since_moment(args.since, app.clock())
    except ValueError as exc:
        raise UsageError(f"--since {args.since!r}: a duration (2h, 3d) or a date") from exc
    read = jobs.created_since(app.store, since, args.limit)
    if len(read) >= args.limit:
        print(f"aiprod: read the limit of {args.limit} jobs; later ones not shown", file=sys.stderr)
    kept = [j for j in read if _matches(j, args.tenant, args.status)]
    kept.sort(key=lambda j: j.created_at, reverse=True)
    if args.json:
        doc = {"since": iso(since), "read": len(read), "truncated": len(read) >= args.limit}
        print(json.dumps({**doc, "jobs": [job_row(j) for j in kept]}, indent=2))
    else:
        print(jobs_table(kept))
    return 0


def _matches(job, tenant: str | None, status: str | None) -> bool:
    return (tenant is None or job.tenant == tenant) and (
        status is None or job.status.value == status
    )


def add_wait(sub, name: str) -> argparse.ArgumentParser:
    wait = sub.add_parser(name, help="follow a job to its end (exit 0 only if it succeeded)")
    wait.add_argument("job_id")
    wait.add_argument("--timeout", type=float, default=3600.0, help="seconds (default 3600)")
    wait.add_argument("--interval", type=float, default=POLL_S, help="seconds between reads")
    return wait


def wait(args: argparse.Namespace, sleep=time.sleep) -> int:
    """Print each change (status, attempt, its state); the job may not exist yet (just
    submitted): it is waited for like any other change."""
    job = follow(context.make_app(), args.job_id, args.timeout, args.interval, sleep)
    if job is None:
        print(f"aiprod: {args.job_id} still not over after {args.timeout:g} s", file=sys.stderr)
        return EXIT_TIMEOUT
    return EXIT.get(job.status.value, EXIT_OTHER_END)


def follow(app, job_id: str, timeout: float, interval: float, sleep=time.sleep):
    """Read the job until it is over, printing each change; the final job, or None when
    ``timeout`` passed first (``aiprod wait``, ``aiprod cancel``)."""
    from aiprod.repositories import jobs
    from aiprod_tools.views.listing import progress_line

    deadline = time.monotonic() + timeout
    shown = None
    while True:
        job = jobs.load(app.store, job_id)
        line = f"no job {job_id!r} yet" if job is None else progress_line(job)
        if line != shown:
            print(line, flush=True)
            shown = line
        if job is not None and job.is_terminal:
            return job
        if time.monotonic() >= deadline:
            return None
        sleep(min(interval, max(0.0, deadline - time.monotonic())))
