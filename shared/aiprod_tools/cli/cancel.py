"""``aiprod cancel JOB [--reason R]``: publish a cancel on the control topic, then follow the
job to its end (the deployed ``control_job`` function applies it, with the provider keys
this machine need not have).

Exit status: 0 the job ended CANCELLED (or was already); 1 no such job, or it was over
before the cancel; 3 its render finished first (it succeeded, and is charged); 124 the
timeout passed first (the cancel is published, the job goes on ending without us watching).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
import time

from aiprod import topology
from aiprod.exceptions import OperatorInputError
from aiprod_tools.cli import context
from aiprod_tools.cli.listing import EXIT_TIMEOUT, POLL_S, follow

EXIT_TOO_LATE = 3


def add_cancel(sub, name: str) -> argparse.ArgumentParser:
    cancel = sub.add_parser(name, help="cancel a queued or running job, and wait for its end")
    cancel.add_argument("job_id")
    cancel.add_argument("--reason", default="", help="kept on the job and its job.cancelled")
    cancel.add_argument("--by", help="who asks (default: cli:<your user name>)")
    cancel.add_argument("--timeout", type=float, default=300.0, help="seconds (default 300)")
    cancel.add_argument("--no-wait", action="store_true", help="publish the cancel and return")
    return cancel


def cancel(args: argparse.Namespace, sleep=time.sleep) -> int:
    from aiprod.domain.control_messages import ControlAction, ControlRequest
    from aiprod.domain.jobs import JobStatus
    from aiprod.repositories import jobs

    app = context.make_app()
    job = jobs.load(app.store, args.job_id)
    if job is None:
        raise OperatorInputError(f"no job {args.job_id!r}")
    if job.status is JobStatus.CANCELLED:
        print(f"{args.job_id} is cancelled already")
        return 0
    if job.is_terminal:
        raise OperatorInputError(f"{args.job_id} is over ({job.status.value}): nothing to cancel")
    request = ControlRequest(
        action=ControlAction.CANCEL,
        job_id=args.job_id,
        reason=args.reason,
        requested_by=args.by or f"cli:{getpass.getuser()}",
    )
    body = request.model_dump_json(exclude_none=True).encode()
    message_id = app.bus.publish(topology.JOB_CONTROL, body, {"job_id": args.job_id})
    print(f"cancel published to {app.settings.prefix}{topology.JOB_CONTROL}: message {message_id}")
    if args.no_wait:
        return 0
    ended = follow(app, args.job_id, args.timeout, POLL_S, sleep)
    if ended is None:
        print(f"aiprod: {args.job_id} not over after {args.timeout:g} s", file=sys.stderr)
        return EXIT_TIMEOUT
    cost = json.dumps({"status": ended.status.value, "cost_micros": ended.cost_micros})
    print(cost)
    if ended.status is JobStatus.CANCELLED:
        return 0
    print(f"aiprod: {args.job_id} ended {ended.status.value} before the cancel", file=sys.stderr)
    return EXIT_TOO_LATE if ended.status is JobStatus.SUCCEEDED else 1
