"""A local HTTP server that records every request and answers from a script.

Each provider fake subclasses ``FakeServer`` with its real routes and JSON shapes. A test
scripts it two ways: ``queue(route, Reply(...))`` answers the next calls of a route with canned
replies (a 429, a 500, a hang, garbled JSON) before the fake's normal behaviour resumes, and
each fake's own fields (how many polls before done, the final state) shape that behaviour.
Output videos are served from ``/outputs/<name>`` unless ``outputs_gone`` is set (404), and
input images a test puts in ``files`` from ``/files/<name>``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

VIDEO = b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00mp42isom" + bytes(range(256)) * 2048


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict/list → JSON; bytes → sent as they are
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # a hang: answer only after this long (the client times out first)
    truncated: bool = False  # announce the whole length, send half, close (a broken download)


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
        self.outputs_truncated = 0  # how many output downloads break half-way
        self.started: dict[str, Any] = {}  # provider task id → its state (``polls_left``)
        self.files: dict[str, tuple[bytes, str]] = {}  # /files/<name> → (body, content type)
        self._queues: dict[str, deque[Reply]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

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

    def dispatch(self, request: Recorded) -> Reply:
        """The reply to one request (subclasses route; this serves the output files)."""
        if request.method == "GET" and request.path.startswith("/outputs/"):
            if self.outputs_gone:
                return Reply(404, b"<Error>expired</Error>", {"content-type": "application/xml"})
            with self._lock:
                broken = self.outputs_truncated > 0
                self.outputs_truncated -= broken
            return Reply(200, VIDEO, {"content-type": "video/mp4"}, truncated=broken)
        name = request.path.removeprefix("/files/")
        if request.method == "GET" and name in self.files:
            body, content_type = self.files[name]
            return Reply(200, body, {"content-type": content_type})
        return Reply(404, {"error": f"no route {request.method} {request.path}"})

    def scripted(self, route: str) -> Reply | None:
        with self._lock:
            queue = self._queues.get(route)
            return queue.popleft() if queue else None

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
            if reply.delay_s:
                time.sleep(reply.delay_s)
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

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = _serve

        def log_message(self, *args: object) -> None:
            pass

    return Handler
