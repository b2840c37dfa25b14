"""Hostile inputs, one table (issue 13, "What must hold"): ids, image URIs, oversize fields,
encodings, forged outcomes and tasks — and image fetches against a local HTTPS server.

Each row names its input and what must come of it (the rejection and its field, the
dead-letter and its reason, the attempt failure and its class); for every row no exception
escapes the handler, and no log record carries the input's text (a marker planted in it).
A tenant publishing on another tenant's topic is added with per-tenant topics (see the
marked place below).
"""

from __future__ import annotations

import json
import logging
import ssl
from dataclasses import dataclass

import pytest

from aiprod.adapters.image_fetch import ImageFetcher
from aiprod.domain.image_uris import check_image_uri
from aiprod.domain.messages import ErrorClass, RenderOutcome
from aiprod.exceptions import ProviderError
from fakes.base import Drip, FakeServer, Reply
from fakes.tls import self_signed
from support.inputs_app import BUCKET, inputs_app

MARK = "zebra4471"  # planted in every input: it must never reach a log record
IMG = f"/{MARK}.png"


@dataclass(frozen=True)
class Row:
    name: str
    kind: str  # job | task | outcome | fetch
    given: object  # a job message (dict/bytes), a change to a task or an outcome, a URL
    expect: tuple  # ("rejected", field) | ("dead", reason) | (error_class, message part)


def job(**fields) -> dict:
    return {"job_id": "h1", "prompt": f"a cat {MARK}", **fields}


def image(uri: str) -> dict:
    return job(image_uri=uri)


BAD_IMAGE = ("rejected", "image_uri")
DEAD = ("dead", "invalid")
MISMATCH = ("dead", "mismatch")
NOT_FETCHED = "input image could not be fetched"
ROWS = [
    # ids: a job_id that cannot name a document has nobody to answer: dead-lettered
    Row("id empty", "job", job(job_id=""), DEAD),
    Row("id path traversal", "job", job(job_id="../../etc/passwd"), DEAD),
    Row("id slash", "job", job(job_id=f"a/{MARK}"), DEAD),
    Row("id overlong", "job", job(job_id="x" * 129), DEAD),
    Row("id unicode", "job", job(job_id="ジョブ"), DEAD),
    Row("id dunder", "job", job(job_id="__name__"), DEAD),
    Row("id NUL", "job", job(job_id="a\x00b"), DEAD),
    Row("id number", "job", job(job_id=12345), DEAD),
    # image URIs: inside hosts in every spelling
    Row("ipv4 loopback", "job", image(f"https://127.0.0.1{IMG}"), BAD_IMAGE),
    Row("ipv6 loopback", "job", image(f"https://[::1]{IMG}"), BAD_IMAGE),
    Row("ipv4-mapped ipv6", "job", image(f"https://[::ffff:127.0.0.1]{IMG}"), BAD_IMAGE),
    Row("nat64 loopback", "job", image(f"https://[64:ff9b::7f00:1]{IMG}"), BAD_IMAGE),
    Row("decimal ipv4", "job", image(f"https://2130706433{IMG}"), BAD_IMAGE),
    Row("octal ipv4", "job", image(f"https://0177.0.0.1{IMG}"), BAD_IMAGE),
    Row("hex ipv4", "job", image(f"https://0x7f.0.0.1{IMG}"), BAD_IMAGE),
    Row("hex whole ipv4", "job", image(f"https://0x7f000001{IMG}"), BAD_IMAGE),
    Row("short ipv4", "job", image(f"https://127.1{IMG}"), BAD_IMAGE),
    Row("private 10/8", "job", image(f"https://10.0.0.1{IMG}"), BAD_IMAGE),
    Row("private 192.168/16", "job", image(f"https://192.168.1.1{IMG}"), BAD_IMAGE),
    Row("private 172.16/12", "job", image(f"https://172.16.0.1{IMG}"), BAD_IMAGE),
    Row("cgnat", "job", image(f"https://100.64.0.1{IMG}"), BAD_IMAGE),
    Row("metadata ip", "job", image(f"https://169.254.169.254/computeMetadata/{MARK}"), BAD_IMAGE),
    Row("unique local v6", "job", image(f"https://[fd00::1]{IMG}"), BAD_IMAGE),
    Row("link local v6", "job", image(f"https://[fe80::1]{IMG}"), BAD_IMAGE),
    Row("unspecified", "job", image(f"https://0.0.0.0{IMG}"), BAD_IMAGE),
    Row("multicast", "job", image(f"https://224.0.0.1{IMG}"), BAD_IMAGE),
    Row("metadata name", "job", image(f"https://metadata.google.internal{IMG}"), BAD_IMAGE),
    Row("metadata short name", "job", image(f"https://metadata{IMG}"), BAD_IMAGE),
    Row("localhost", "job", image(f"https://localhost{IMG}"), BAD_IMAGE),
    Row("sub.localhost", "job", image(f"https://a.localhost{IMG}"), BAD_IMAGE),
    Row("LOCALHOST trailing dot", "job", image(f"https://LOCALHOST.{IMG}"), BAD_IMAGE),
    Row("userinfo", "job", image(f"https://good.example.com@127.0.0.1{IMG}"), BAD_IMAGE),
    Row("userinfo public", "job", image(f"https://u:p@example.com{IMG}"), BAD_IMAGE),
    Row("other port", "job", image(f"https://example.com:8443{IMG}"), BAD_IMAGE),
    Row("percent host", "job", image(f"https://127%2e0%2e0%2e1{IMG}"), BAD_IMAGE),
    Row("backslash", "job", image(f"https://example.com\\@127.0.0.1{IMG}"), BAD_IMAGE),
    Row("unicode dots", "job", image(f"https://127。0。0。1{IMG}"), BAD_IMAGE),
    Row("space", "job", image(f"https://exa mple.com{IMG}"), BAD_IMAGE),
    Row("http", "job", image(f"http://example.com{IMG}"), BAD_IMAGE),
    Row("file", "job", image(f"file:///etc/{MARK}"), BAD_IMAGE),
    Row("gopher", "job", image(f"gopher://example.com/{MARK}"), BAD_IMAGE),
    Row("gs other bucket", "job", image(f"gs://someone-else/{MARK}.png"), BAD_IMAGE),
    Row("gs no object", "job", image(f"gs://{BUCKET}"), BAD_IMAGE),
    # oversize fields and encodings
    Row("prompt overlong", "job", job(prompt=MARK * 300), ("rejected", "prompt")),
    Row("prompt NUL", "job", job(prompt=f"{MARK}\x00"), ("rejected", "prompt")),
    Row("prompt escape", "job", job(prompt=f"{MARK}\x1b[2J"), ("rejected", "prompt")),
    Row("image_uri overlong", "job", image("https://example.com/" + MARK * 300), BAD_IMAGE),
    Row(
        "metadata keys",
        "job",
        job(metadata={f"{MARK}{i}": "v" for i in range(40)}),
        ("rejected", "metadata"),
    ),
    Row("metadata nested", "job", job(metadata={"a": {"b": MARK}}), ("rejected", "metadata")),
    Row("unknown field", "job", job(**{MARK: "x"}), ("rejected", MARK)),
    Row("tenant unicode", "job", job(tenant=f"ténant{MARK}"), ("rejected", "tenant")),
    Row("invalid utf-8", "job", b'{"job_id": "h1", "prompt": "\xff' + MARK.encode() + b'"}', DEAD),
    Row("raw NUL byte", "job", b'{"job_id": "h1", "prompt": "a\x00' + MARK.encode() + b'"}', DEAD),
    Row("deep nesting", "job", b'{"p": "' + MARK.encode() + b'", "x": ' + b"[" * 100_000, DEAD),
    Row("not an object", "job", json.dumps([MARK]).encode(), DEAD),
    # forged render tasks (the job's attempt 1 is DISPATCHED)
    Row("task hold 0", "task", {"hold_micros": 0}, MISMATCH),
    Row("task other model", "task", {"model": "other-model"}, MISMATCH),
    Row("task other prompt", "task", {"request": {"prompt": f"other {MARK}"}}, MISMATCH),
    Row("task other image", "task", {"request": {"image_uri": f"https://e.com/{MARK}"}}, MISMATCH),
    Row("task no such attempt", "task", {"attempt": 9}, MISMATCH),
    Row("task path job_id", "task", {"job_id": f"../{MARK}"}, DEAD),
    Row("task internal image", "task", {"request": {"image_uri": f"https://[::1]/{MARK}"}}, DEAD),
    # forged outcomes (attempt 1 RUNNING, its task id "task-1" stored)
    Row("outcome success cost 0", "outcome", {}, MISMATCH),
    Row("outcome no task id", "outcome", {"provider_task_id": None}, MISMATCH),
    Row("outcome other task id", "outcome", {"provider_task_id": MARK}, MISMATCH),
    Row("outcome other backend", "outcome", {"backend": "veo"}, MISMATCH),
    Row("outcome other model", "outcome", {"model": "m"}, MISMATCH),
    Row("outcome no such attempt", "outcome", {"attempt": 7}, MISMATCH),
    Row("outcome huge backend", "outcome", {"backend": MARK * 50}, DEAD),
    # control messages (cancel): dead-lettered, logged by location and type only
    Row("control unknown key", "control", {"action": "cancel", "job_id": "h1", MARK: 1}, DEAD),
    Row("control path job_id", "control", {"action": "cancel", "job_id": f"../{MARK}"}, DEAD),
    # image fetches (``given``: the URL path and what the test resolver answers)
    Row("resolves to private", "fetch", ("/a.png", ["10.0.0.5"]), ("TERMINAL", NOT_FETCHED)),
    Row(
        "resolves to metadata", "fetch", ("/a.png", ["169.254.169.254"]), ("TERMINAL", NOT_FETCHED)
    ),
    Row(
        "one of many private",
        "fetch",
        ("/a.png", ["8.8.8.8", "127.0.0.1"]),
        ("TERMINAL", NOT_FETCHED),
    ),
    Row(
        "resolves to mapped v6", "fetch", ("/a.png", ["::ffff:10.0.0.1"]), ("TERMINAL", NOT_FETCHED)
    ),
    Row("resolves to nothing", "fetch", ("/a.png", []), ("TERMINAL", NOT_FETCHED)),
    Row("redirect inside", "fetch", ("/redirect", None), ("FALLBACK", NOT_FETCHED)),
    Row("internal 500", "fetch", ("/error", None), ("FALLBACK", NOT_FETCHED)),
    Row("slow drip", "fetch", ("/files/slow.png", None), ("FALLBACK", "slower than 1 s")),
    Row("oversize body", "fetch", ("/files/big.png", None), ("FALLBACK", "over 1 KiB")),
    # "A tenant publishing on another tenant's topic" has its own rows, published through
    # the tenant topics themselves: tests/unit/test_tenant_topics.py (HOSTILE), and end to
    # end on the emulators: tests/e2e/test_tenant_topics_e2e.py.
]


@pytest.fixture
def app():
    yield from inputs_app()


class ImageServer(FakeServer):
    def dispatch(self, request):
        if request.path == "/redirect":
            return Reply(302, b"", {"location": "https://169.254.169.254/computeMetadata/v1/"})
        if request.path == "/error":
            return Reply(500, b"internal-secret-body 10.1.2.3", {"content-type": "text/plain"})
        return super().dispatch(request)


@pytest.fixture(scope="module")
def image_server(tmp_path_factory):
    cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    server = ImageServer().serve_tls(cert, key).start()
    server.files["ok.png"] = (b"\x89PNG" + bytes(100), "image/png")
    server.files["big.png"] = (bytes(4096), "image/png")
    server.drips["slow.png"] = Drip(bytes(512), chunk=64, every_s=0.3)
    context = ssl.create_default_context(cafile=str(cert))
    context.check_hostname = False  # the test certificate names 127.0.0.1, not the host
    yield server, context
    server.stop()


def fetcher_for(server, context, answer: list[str] | None) -> ImageFetcher:
    """A fetcher whose resolver answers ``answer`` (None: the server's own address, which
    only this test allows), dialling the server's port."""
    port = int(server.url.rsplit(":", 1)[1])
    addresses = ["127.0.0.1"] if answer is None else answer
    return ImageFetcher(
        resolver=lambda host, _port: list(addresses),
        allow=frozenset({"127.0.0.1"}) if answer is None else frozenset(),
        ssl_context=context,
        max_bytes=1024,
        connect_port=port,
    )


@pytest.mark.parametrize("row", ROWS, ids=lambda r: r.name)
def test_hostile_input_is_refused_with_its_reason(row: Row, app, image_server, caplog):
    caplog.set_level(logging.DEBUG)
    # GIVEN a hostile input WHEN its handler takes it (nothing may escape) THEN its reason
    handlers = {"job": _job, "task": _task, "outcome": _outcome, "fetch": _fetch}
    {**handlers, "control": _control}[row.kind](row, app, image_server)
    # AND no log record repeats the input
    leaked = [r.getMessage() for r in caplog.records if MARK in str(vars(r))]
    assert leaked == [], leaked


def test_the_table_has_at_least_40_rows():
    assert len(ROWS) >= 40 and len({r.name for r in ROWS}) == len(ROWS)


def _job(row: Row, app, _server) -> None:
    data = row.given if isinstance(row.given, bytes) else json.dumps(row.given).encode()
    app.router.handle(data, {})
    events = [json.loads(m.data) for m in app.bus.published["job-events"]]
    dead = app.bus.published["dead-letter"]
    if row.expect[0] == "dead":
        assert events == [] and [m.attributes["reason"] for m in dead] == [row.expect[1]]
        return
    [event] = events
    assert (event["type"], event["reason"]) == ("job.rejected", "invalid"), event
    assert event["message"].startswith(row.expect[1]) or f"{row.expect[1]}:" in event["message"]


def _admitted(app) -> tuple[dict, bytes]:
    app.router.handle(json.dumps(job(job_id="f1")).encode(), {})
    doc = app.store.get("jobs", "f1")
    tasks = [m for t, ms in app.bus.published.items() if t.startswith("render-") for m in ms]
    [task] = [m for m in tasks if json.loads(m.data)["job_id"] == "f1"]
    return doc, task.data


def _task(row: Row, app, _server) -> None:
    doc, data = _admitted(app)
    task = json.loads(data)
    change = dict(row.given)
    task["request"].update(change.pop("request", {}))
    task.update(change)
    app.renderer(doc["attempts"][0]["backend"]).handle(json.dumps(task).encode(), {})
    [dead] = app.bus.published["dead-letter"]
    assert dead.attributes["reason"] == row.expect[1]
    after = app.store.get("jobs", "f1")["attempts"][0]
    assert after["state"] == "DISPATCHED" and not app.bus.published["render-outcomes"]


def _outcome(row: Row, app, _server) -> None:
    doc, _ = _admitted(app)
    attempt = doc["attempts"][0]
    attempt.update(state="RUNNING", provider_task_id="task-1")
    app.store.set("jobs", "f1", doc)
    forged = RenderOutcome(
        job_id="f1",
        attempt=1,
        backend=attempt["backend"],
        model=attempt["model"],
        succeeded=True,
        cost_micros=0,
        output_uri=f"gs://x/{MARK}.mp4",
        provider_task_id="task-1",
    ).model_dump(mode="json")
    # with no change: the right ids, but never stored on its attempt, so never sent by us
    app.outcomes.handle(json.dumps({**forged, **row.given}).encode(), {})
    [dead] = app.bus.published["dead-letter"]
    assert dead.attributes["reason"] == row.expect[1]
    after = app.store.get("jobs", "f1")
    assert after["status"] == "RUNNING" and after["attempts"][0]["state"] == "RUNNING"


def _fetch(row: Row, _app, image_server) -> None:
    server, context = image_server
    path, answer = row.given
    fetcher = fetcher_for(server, context, answer)
    with pytest.raises(ProviderError) as caught:
        fetcher.fetch(f"https://images.example.com{path}", deadline_s=1.0)
    error = caught.value
    assert (error.error_class, error.code) == (row.expect[0], "bad_request")
    assert row.expect[1] in str(error)
    for internal in ("500", "302", "169.254", "10.1.2.3", "internal-secret", "127.0.0.1"):
        assert internal not in str(error)


def test_a_fetch_dials_the_checked_address_and_names_the_host(image_server):
    # GIVEN a name resolving (only in this test) to the local server's address
    server, context = image_server
    # WHEN the image is fetched THEN its bytes arrive, asked for under the host's own name
    data, mime = fetcher_for(server, context, None).fetch(
        "https://images.example.com/files/ok.png", deadline_s=2.0
    )
    assert (data[:4], mime) == (b"\x89PNG", "image/png")
    assert server.calls("GET", "/files/ok.png")[-1].header("host") == "images.example.com"


def _control(row: Row, app, _server) -> None:
    app.job_control.handle(json.dumps(row.given).encode(), {})
    [dead] = app.bus.published["dead-letter"]
    assert dead.attributes["reason"] == row.expect[1]


def test_legitimate_messages_still_pass_the_checks(app):
    # GIVEN an image in a configured bucket THEN it is admitted like any other job
    app.router.handle(json.dumps(image(f"gs://{BUCKET}/bottle.png")).encode(), {})
    assert app.store.get("jobs", "h1")["status"] == "RUNNING"
    # GIVEN a RUNNING attempt WHEN an UNKNOWN outcome with no task id comes (a create nobody
    # confirmed) THEN it is heard (the hold kept, the attempt left to the reconciler)
    doc, _ = _admitted(app)
    attempt = doc["attempts"][0]
    attempt.update(state="RUNNING")
    app.store.set("jobs", "f1", doc)
    unknown = RenderOutcome(
        job_id="f1",
        attempt=1,
        backend=attempt["backend"],
        model=attempt["model"],
        succeeded=False,
        error_class=ErrorClass.UNKNOWN,
        error_code="submit_unconfirmed",
    )
    app.outcomes.handle(unknown.model_dump_json().encode(), {})
    assert app.bus.published["dead-letter"] == []
    assert app.store.get("jobs", "f1")["status"] == "RUNNING"


@pytest.mark.parametrize(
    "uri",
    [
        "https://example.com/a.png",
        "https://cdn.example.co.uk:443/img/a.png?v=2#x",
        "https://8.8.8.8/a.png",
        "https://[2001:4860:4860::8888]/a.png",
        "https://xn--bcher-kva.example/a.png",
        "https://example.com./a.png",
        f"gs://{BUCKET}/folder/a.png",
    ],
)
def test_public_image_uris_are_still_accepted(uri: str):
    # GIVEN an image anyone may fetch THEN validation lets it through (no over-blocking)
    check_image_uri(uri, frozenset({BUCKET}))
