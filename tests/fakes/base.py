"""A local HTTP server that records every request and answers from a script.

Each provider fake subclasses ``FakeServer`` with its real routes and JSON shapes. A test
scripts it two ways: ``queue(route, Reply(...))`` answers the next calls of a route with canned
replies (a 429, a 500, a hang, garbled JSON) before the fake's normal behaviour resumes, and
each fake's own fields (how many polls before done, the final state) shape that behaviour.
Output videos are real clips made with PyAV (``support.media``), each shaped like what its
task asked for (``clips``: task id → ``ClipSpec``), with the defect named in ``output_defect``
(``black``, ``frozen``, ...) given to every task created while it is set. They are served
from ``/outputs/<name>`` unless ``outputs_gone`` is set (404) or
``outputs_status`` names another answer (a 500), and input images a test puts in ``files``
from ``/files/<name>`` (a ``Drip`` there is sent a few bytes at a time, slowly).

A gateway can lose an answer the provider already acted on: a reply queued with
``lost_answer=True`` on a create route lets the fake create the task first, then answers
the scripted error or hang instead of the task id. ``before_answer`` runs on the server just
before it answers (a test moves its clock on there, or runs the reconciler), and
``late(hook)`` is a create carried out and answered normally, only after ``hook`` ran.

Each provider fake keeps a bill: ``billed()`` is what the provider charges for every task
it created (provider task id → micro-USD), as if each one finished in the fake's current
``final`` state, polled or not (a created task runs and bills whether anyone looks).
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from support.media import ClipSpec, clip_bytes


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list → JSON; bytes → sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # a hang: answer only after this long (the client times out first)
    truncated: bool = False  # announce the whole length, send half, close (a broken download)
    lost_answer: bool = False  # the request was carried out; this reply replaces its answer
    before_answer: Callable[[], None] | None = None  # runs on the server before it answers
    as_is: bool = False  # answer what the fake would have answered (with ``lost_answer``)


def late(hook: Callable[[], None]) -> Reply:
    """A create carried out and answered normally, but only after ``hook`` ran."""
    return Reply(lost_answer=True, before_answer=hook, as_is=True)


@dataclass
class Drip:
    """An input file sent ``chunk`` bytes every ``every_s`` seconds (a slow-drip URL); the
    server notes whether the client hung up before the last byte (``abandoned``)."""

    body: bytes
    content_type: str = "image/png"
    chunk: int = 64
    every_s: float = 0.5
    abandoned: bool = False
    served_s: float = 0.0


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


class FakeServer:
    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.outputs_gone = False
        self.outputs_status: int | None = None  # e.g. 500: the output URL answers that
        self.outputs_truncated = 0  # how many output downloads break half-way
        self.started: dict[str, Any] = {}  # provider task id → its state (``polls_left``)
        self.clips: dict[str, ClipSpec] = {}  # provider task id → the video it renders
        self.output_defect: str | None = None  # given to the tasks created while set
        self.files: dict[str, tuple[bytes, str]] = {}  # /files/<name> → (body, content type)
        self.drips: dict[str, Drip] = {}  # /files/<name> sent slowly
        self._queues: dict[str, deque[Reply]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._scheme = "http"
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"{self._scheme}://127.0.0.1:{self._server.server_address[1]}"

    def serve_tls(self, cert: Path, key: Path) -> FakeServer:
        """Answer over HTTPS with this certificate (call before ``start``)."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self._scheme = "https"
        return self

    def start(self) -> FakeServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def queue(self, route: str, *replies: Reply) -> None:
        with self._lock:
            self._queues[route].extend(replies)

    def calls(self, method: str, path_start: str = "") -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(path_start)]

    def finish_all(self) -> None:
        """Every started task finishes at its next look."""
        for item in self.started.values():
            item.polls_left = 0

    def output_url(self, name: str) -> str:
        return f"{self.url}/outputs/{name}"

    def shape(self, task_id: str, spec: ClipSpec) -> None:
        """The video a new task renders, with the defect scripted now (``output_defect``)."""
        self.clips[task_id] = replace(spec, defect=self.output_defect)

    def video(self, task_id: str) -> bytes:
        return clip_bytes(self.clips.get(task_id, ClipSpec()))

    def dispatch(self, request: Recorded) -> Reply:
        """The reply to one request (subclasses route; this serves the output files)."""
        if request.method == "GET" and request.path.startswith("/outputs/"):
            if self.outputs_gone:
                return Reply(404, b"<Error>expired</Error>", {"content-type": "application/xml"})
            if self.outputs_status:
                body = b"<Error>InternalError</Error>"
                return Reply(self.outputs_status, body, {"content-type": "application/xml"})
            with self._lock:
                broken = self.outputs_truncated > 0
                self.outputs_truncated -= broken
            task_id = request.path.removeprefix("/outputs/").removesuffix(".mp4")
            video = self.video(task_id)
            return Reply(200, video, {"content-type": "video/mp4"}, truncated=broken)
        name = request.path.removeprefix("/files/")
        if request.method == "GET" and name in self.files:
            body, content_type = self.files[name]
            return Reply(200, body, {"content-type": content_type})
        if request.method == "GET" and name in self.drips:
            return Reply(200, self.drips[name], {"content-type": self.drips[name].content_type})
        return Reply(404, {"error": f"no route {request.method} {request.path}"})

    def scripted(self, route: str) -> Reply | None:
        with self._lock:
            queue = self._queues.get(route)
            return queue.popleft() if queue else None

    def answer(self, route: str, perform: Callable[[], Reply]) -> Reply:
        """The next scripted reply of ``route``, else ``perform()`` (the fake's own answer).
        A reply with ``lost_answer`` performs the request first (the task exists), then runs
        its ``before_answer`` and stands in for the answer (or lets it through, ``as_is``)."""
        reply = self.scripted(route)
        if reply is None or not reply.lost_answer:
            return reply or perform()
        actual = perform()
        if reply.before_answer is not None:
            reply.before_answer()
        return actual if reply.as_is else replace(reply, before_answer=None)

    def billed(self) -> dict[str, int]:
        """Provider task id → micro-USD charged, for every task created (subclasses price)."""
        return {task_id: self.price(task) for task_id, task in list(self.started.items())}

    def billed_total(self) -> int:
        return sum(self.billed().values())

    def price(self, task: Any) -> int:
        """What one created task bills when it finishes in the current ``final`` state."""
        raise NotImplementedError

    def _record(self, request: Recorded) -> Reply:
        with self._lock:
            self.requests.append(request)
        return self.dispatch(request)


def _handler(fake: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            request = Recorded(self.command, self.path, dict(self.headers.items()), body)
            reply = fake._record(request)
            if reply.before_answer is not None:
                reply.before_answer()
            if reply.delay_s:
                time.sleep(reply.delay_s)
            if isinstance(reply.body, Drip):
                self._drip(reply.body)
                return
            data = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
            try:
                self.send_response(reply.status)
                headers = {"content-type": "application/json", **reply.headers}
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                if reply.truncated:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a scripted hang)

        def _drip(self, drip: Drip) -> None:
            started = time.monotonic()
            self.send_response(200)
            self.send_header("content-type", drip.content_type)
            self.send_header("content-length", str(len(drip.body)))
            self.end_headers()
            try:
                for start in range(0, len(drip.body), drip.chunk):
                    self.wfile.write(drip.body[start : start + drip.chunk])
                    self.wfile.flush()
                    time.sleep(drip.every_s)
            except (BrokenPipeError, ConnectionResetError):
                drip.abandoned = True
            drip.served_s = time.monotonic() - started

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

        def log_message(self, *args: object) -> None:
            pass

    return Handler
