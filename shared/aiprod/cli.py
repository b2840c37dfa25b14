"""The ``aiprod`` command: demo, schema, submit, status, reconcile, dev. A table of subcommands."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from aiprod.domain.messages import JobRequest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "jobs.jsonl"


def cmd_demo(args: argparse.Namespace) -> int:
    from aiprod_tools.demo import run_demo

    return run_demo(Path(args.batch), Path(args.log))


def cmd_schema(args: argparse.Namespace) -> int:
    print(json.dumps(JobRequest.model_json_schema(), indent=2))
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from aiprod.bootstrap import App
    from aiprod.config import Settings

    if args.file:
        text = sys.stdin.read() if args.file == "-" else Path(args.file).read_text()
        bodies = [line for line in text.splitlines() if line.strip()] if args.lines else [text]
    else:
        fields = {"job_id": args.job_id, "prompt": args.prompt, "duration_s": args.duration}
        if args.image_uri:
            fields["image_uri"] = args.image_uri
        if args.tenant:
            fields["tenant"] = args.tenant
        bodies = [json.dumps(fields)]
    app = App(Settings.from_env())
    for body in bodies:
        message_id = app.bus.publish("jobs", body.encode())
        print(f"published to {app.settings.prefix}jobs: message {message_id}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from aiprod.bootstrap import App
    from aiprod.config import Settings
    from aiprod.services import records
    from aiprod_tools.views.jobs import describe_job

    app = App(Settings.from_env())
    job = records.load_job(app.store, args.job_id)
    if job is None:
        print(f"no job {args.job_id!r} in project {app.settings.project}", file=sys.stderr)
        return 1
    print(job.model_dump_json(indent=2) if args.json else describe_job(job))
    return 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from aiprod.bootstrap import App
    from aiprod.config import Settings
    from aiprod_tools.views.tables import render_table

    app = App(Settings.from_env())
    report = app.reconciler.run().to_json()
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(render_table(["action", "jobs"], list(report.items())))
    return 1 if report["errors"] else 0


def cmd_dev(args: argparse.Namespace) -> int:
    from aiprod_tools.stack.dev import run_dev

    return run_dev(simulation=args.simulation)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="aiprod", description=__doc__)
    sub = root.add_subparsers(dest="command", required=True)

    # operator commands (budget show|set|audit, dlq list|replay) live in cli_ops.py
    from aiprod import cli_ops

    cli_ops.register(sub)

    # deployment: aiprod package (one deployable folder per function) lives in cli_deploy.py
    from aiprod import cli_deploy

    cli_deploy.register(sub)

    # aiprod report (the local metrics as a per-backend table and chart) lives in cli_report.py
    from aiprod import cli_report

    cli_report.register(sub)

    demo = sub.add_parser("demo", help="run the sample batch on the embedded bus and store")
    demo.add_argument("--batch", default=str(EXAMPLES), help="JSON lines of JobRequests")
    demo.add_argument("--log", default=".aiprod/demo.log", help="where the JSON logs go")
    demo.set_defaults(run=cmd_demo)

    sub.add_parser("schema", help="print the JobRequest JSON Schema").set_defaults(run=cmd_schema)

    submit = sub.add_parser("submit", help="publish a JobRequest to the jobs topic")
    submit.add_argument("--file", help="a JSON file ('-' for stdin)")
    submit.add_argument("--lines", action="store_true", help="the file holds one job per line")
    submit.add_argument("--job-id")
    submit.add_argument("--prompt")
    submit.add_argument("--image-uri")
    submit.add_argument("--duration", type=int, default=5)
    submit.add_argument("--tenant")
    submit.set_defaults(run=cmd_submit)

    status = sub.add_parser("status", help="show a job document")
    status.add_argument("job_id")
    status.add_argument("--json", action="store_true", help="the raw document")
    status.set_defaults(run=cmd_status)

    reconcile = sub.add_parser(
        "reconcile", help="one lease sweep now (what Cloud Scheduler runs every minute)"
    )
    reconcile.add_argument("--json", action="store_true", help="the report as JSON")
    reconcile.set_defaults(run=cmd_reconcile)

    dev = sub.add_parser("dev", help="start the emulator stack and wait (Ctrl-C stops it)")
    dev.add_argument("--simulation", default="{}", help="AIPROD_SIMULATION JSON")
    dev.set_defaults(run=cmd_dev)
    return root


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "submit" and not args.file and not (args.job_id and args.prompt):
        parser().error("submit needs --file, or --job-id and --prompt")
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
