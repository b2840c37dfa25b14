"""One function of the emulator stack, as Cloud Run serves it: functions-framework's app
behind the concurrency gate (``gate.ConcurrencyGate``), on gunicorn's threaded worker.

``python -m aiprod_tools.stack.serve --target NAME --source main.py --signature-type
cloudevent --port N --concurrency C`` does what the ``functions-framework`` command does
(``create_app``, then its gunicorn server: one worker, ``THREADS`` threads), with the gate
around the app and ``C + SPARE_THREADS`` threads, so a request past ``C`` finds a free
thread and is answered 429 at once instead of waiting in gunicorn's queue.
"""

from __future__ import annotations

import argparse
import os

SPARE_THREADS = 4  # threads beyond the gate: its 429s, its counters, readiness probes


def threads_for(concurrency: int) -> int:
    return concurrency + SPARE_THREADS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--signature-type", default="http")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--concurrency", type=int, required=True)
    args = parser.parse_args(argv)

    # functions-framework 3.x: create_app is public; create_server is what its CLI runs
    # (gunicorn's gthread worker, reading WORKERS and THREADS from the environment).
    from functions_framework import create_app
    from functions_framework._http import create_server

    from aiprod_tools.stack.gate import ConcurrencyGate

    os.environ["WORKERS"] = "1"  # one process: one App and one gate, like one instance
    os.environ["THREADS"] = str(threads_for(args.concurrency))
    app = create_app(args.target, args.source, args.signature_type)
    app.wsgi_app = ConcurrencyGate(app.wsgi_app, args.concurrency, name=args.target)
    create_server(app, False).run(args.host, args.port)


if __name__ == "__main__":
    main()
