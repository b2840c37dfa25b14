"""``aiprod schema``, ``submit`` and ``status``: the JobRequest contract, publishing requests,
and reading a job document."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from aiprod_tools.cli import context
from aiprod_tools.client import publish_job
from aiprod_tools.exceptions import UsageError


def add_schema(sub, name: str) -> argparse.ArgumentParser:
    return sub.add_parser(name, help="print the JobRequest JSON Schema")


def schema(args: argparse.Namespace) -> int:
    from aiprod.domain.messages import JobRequest

    print(json.dumps(JobRequest.model_json_schema(), indent=2))
    return 0


def add_submit(sub, name: str) -> argparse.ArgumentParser:
    submit = sub.add_parser(name, help="publish a JobRequest on its jobs topic (a tenant's own)")
    submit.add_argument("--file", help="a JSON file ('-' for stdin)")
    submit.add_argument("--lines", action="store_true", help="the file holds one job per line")
    submit.add_argument("--job-id")
    submit.add_argument("--prompt")
    submit.add_argument("--image-uri")
    submit.add_argument("--duration", type=int, default=5)
    submit.add_argument("--tenant")
    return submit


def submit(args: argparse.Namespace) -> int:
    if not args.file and not (args.job_id and args.prompt):
        raise UsageError("submit needs --file, or --job-id and --prompt")
    bodies = _bodies(args)
    app = context.make_app()
    for body in bodies:
        topic, message_id = publish_job(app.bus, body)  # a tenant's job: its own topic
        print(f"published to {app.settings.prefix}{topic}: message {message_id}")
    return 0


def _bodies(args: argparse.Namespace) -> list[str]:
    if args.file:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        return [line for line in text.splitlines() if line.strip()] if args.lines else [text]
    fields = {"job_id": args.job_id, "prompt": args.prompt, "duration_s": args.duration}
    if args.image_uri:
        fields["image_uri"] = args.image_uri
    if args.tenant:
        fields["tenant"] = args.tenant
    return [json.dumps(fields)]


def add_status(sub, name: str) -> argparse.ArgumentParser:
    status = sub.add_parser(name, help="show a job document")
    status.add_argument("job_id")
    status.add_argument("--json", action="store_true", help="the raw document")
    return status


def status(args: argparse.Namespace) -> int:
    from aiprod.repositories import jobs, queue
    from aiprod_tools.views.jobs import describe_job

    app = context.make_app()
    job = jobs.load(app.store, args.job_id)
    if job is None:
        print(f"no job {args.job_id!r} in project {app.settings.project}", file=sys.stderr)
        return 1
    if args.json:
        print(job.model_dump_json(indent=2))
        return 0
    ahead = queue.queued_ahead(app.store, job) if job.queue_key else None
    print(describe_job(job, app.clock(), ahead))
    return 0
