"""Veo on Vertex AI as ``google-genai`` (3.4, ``vertexai=True``, ``v1``) sees it:
``POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:predictLongRunning`` →
``{"name": ".../operations/{id}"}``, then ``...:fetchPredictOperation`` with
``{"operationName"}`` → running, done with ``videos[].gcsUri``, RAI-filtered, or an error.

Like Veo, a finished render is written into the caller's bucket at ``storageUri`` +
``sample_0.mp4`` (through the storage emulator's JSON API, when ``storage_host`` is set). It
accepts only ``Authorization: Bearer TOKEN``: the adapter gets that token through its real
Application Default Credentials path, from an ``authorized_user`` file that carries it with a
far expiry (see ``fixtures``). Routes for ``queue``: ``create``, ``operation``, ``cancel``,
``rate``.

Gemini's ``...:generateContent`` on the same endpoint is the semantic rating of an output: it
answers ``semantic_score`` as Gemini would (a candidate whose text is the JSON rating, the
usage in ``usageMetadata``), or ``rating_text`` verbatim; ``ratings()`` are the requests.

``POST /v1/{operation name}:cancel`` is Vertex AI's operation cancel (google.longrunning:
the operation then ends with error code 1, CANCELLED); every call is recorded in
``cancelled``. google-genai has no public call for it, so the adapter never sends it: a test
checks that it stays empty.

A bucket it cannot write into (missing, or refusing) ends the operation with an error
(``PERMISSION_DENIED``), as Vertex reports a ``storageUri`` it cannot use. The bill: a
finished video (SUCCEEDED, or NO_OBJECT: reported as written) is charged per output second
at the model's price for its resolution (``PRICES``, the catalog's figures); an error, an
RAI-filtered video or an operation whose write failed is charged nothing.
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass

from fakes.base import FakeServer, Recorded, Reply
from support.media import spec_for

TOKEN = "ya29.fake-veo-access-token"
MODEL_PATH = re.compile(
    r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
    r"/publishers/google/models/(?P<model>[^/:]+)"
    r":(?P<verb>predictLongRunning|fetchPredictOperation|generateContent)$"
)
PRICES = {  # micro-USD per output second, by resolution
    "veo-3.1-generate-001": {"720p": 400_000, "1080p": 400_000},
    "veo-3.1-fast-generate-001": {"720p": 100_000, "1080p": 120_000},
}
CANCEL_PATH = re.compile(r"^/v1/(?P<name>projects/[^:]+/operations/[^/:]+):cancel$")
MODELS = set(PRICES)
# What a rating reports using (``usageMetadata``): an 8 s clip at 258 frame tokens a second,
# 32 audio tokens a second, the rubric and prompt; and a one-sentence answer.
RATING_PROMPT_TOKENS = {"VIDEO": 2_064, "AUDIO": 256, "TEXT": 310}
RATING_OUTPUT_TOKENS = 24
BILLED = frozenset({"SUCCEEDED", "NO_OBJECT"})
SAFETY_REASON = (
    "Veo could not generate videos because the input image violates Vertex AI's usage "
    "guidelines. If you think this was an error, send feedback. Support codes: 15236754"
)


@dataclass
class Operation:
    name: str
    storage_uri: str
    polls_left: int
    model: str = ""
    seconds: int = 0
    resolution: str = "720p"
    write_failed: bool = False
    cancelled: bool = False


def error_body(code: int, status: str, message: str) -> dict:
    return {"error": {"code": code, "message": message, "status": status}}


class VeoFake(FakeServer):
    def __init__(self, storage_host: str | None = None) -> None:
        super().__init__()
        self.storage_host = storage_host
        self.polls_before_done = 1
        self.final = "SUCCEEDED"  # or RAI_FILTERED, ERROR, NO_OBJECT (reported, never written)
        self.error = {"code": 13, "message": "Internal error while generating the video."}
        self.started: dict[str, Operation] = {}
        self.cancelled: list[str] = []  # operation names, one per POST {name}:cancel
        self.semantic_score: float = 0.9  # what a rating (generateContent) answers
        self.rating_text: str | None = None  # answered verbatim instead (a malformed answer)
        self.rating_usage = True  # False: the answer carries no usageMetadata

    def dispatch(self, request: Recorded) -> Reply:
        cancel = CANCEL_PATH.match(request.path.split("?")[0])
        if request.method == "POST" and cancel:
            self.cancelled.append(cancel["name"])
            return self.answer("cancel", lambda: self._cancel(cancel["name"]))
        match = MODEL_PATH.match(request.path.split("?")[0])
        if request.method != "POST" or match is None:
            return super().dispatch(request)
        if request.header("authorization") != f"Bearer {TOKEN}":
            return Reply(401, error_body(401, "UNAUTHENTICATED", "Invalid credentials."))
        if match["verb"] == "generateContent":
            return self.answer("rate", lambda: self._rate(match["model"], request.json() or {}))
        if match["verb"] == "predictLongRunning":
            return self.answer("create", lambda: self._create(match, request.json() or {}))
        return self.answer("operation", lambda: self._operation(request.json() or {}))

    def price(self, operation: Operation) -> int:
        if self.final not in BILLED or operation.write_failed or operation.cancelled:
            return 0
        return PRICES[operation.model][operation.resolution] * operation.seconds

    def _create(self, match: re.Match, body: dict) -> Reply:
        instance = (body.get("instances") or [{}])[0]
        params = body.get("parameters") or {}
        problems = [
            not instance.get("prompt"),
            match["model"] not in MODELS,
            params.get("durationSeconds") not in (4, 6, 8),
            params.get("aspectRatio") not in ("16:9", "9:16"),
            params.get("resolution") not in ("720p", "1080p"),
            not str(params.get("storageUri", "")).startswith("gs://"),
        ]
        if any(problems):
            return Reply(400, error_body(400, "INVALID_ARGUMENT", f"Invalid request: {problems}"))
        prefix = f"projects/{match['project']}/locations/{match['location']}"
        name = f"{prefix}/publishers/google/models/{match['model']}/operations/{uuid.uuid4()}"
        audio = params.get("generateAudio", False)
        shape = (params["resolution"], params["aspectRatio"], params["durationSeconds"], audio)
        self.shape(name, spec_for(*shape))
        self.started[name] = Operation(
            name,
            params["storageUri"],
            self.polls_before_done,
            match["model"],
            params["durationSeconds"],
            params["resolution"],
        )
        return Reply(200, {"name": name})

    def _operation(self, body: dict) -> Reply:
        operation = self.started.get(body.get("operationName", ""))
        if operation is None:
            return Reply(404, error_body(404, "NOT_FOUND", "Operation not found."))
        if operation.polls_left > 0:
            operation.polls_left -= 1
            return Reply(200, {"name": operation.name, "done": False, "metadata": {}})
        return Reply(200, {"name": operation.name, "done": True, **self._result(operation)})

    def ratings(self) -> list[Recorded]:
        """The rating requests (``generateContent``) received, in order."""
        return [r for r in self.calls("POST") if r.path.endswith(":generateContent")]

    def _rate(self, model: str, body: dict) -> Reply:
        """Gemini's answer: one candidate whose text is the JSON rating, and the usage. A
        request without a ``gs://`` video (``fileData``, in either JSON spelling) is refused."""
        parts = [p for c in body.get("contents") or [] for p in c.get("parts") or []]
        files = [p["fileData"] for p in parts if "fileData" in p]
        uris = [f.get("fileUri") or f.get("file_uri") or "" for f in files]
        if not uris or not all(u.startswith("gs://") for u in uris):
            return Reply(400, error_body(400, "INVALID_ARGUMENT", "Request contains no video."))
        answer = {"score": self.semantic_score, "reasons": "the boat and the rain are shown"}
        text = self.rating_text if self.rating_text is not None else json.dumps(answer)
        body: dict = {
            "candidates": [
                {"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}
            ],
            "modelVersion": model,
        }
        if self.rating_usage:
            prompt = sum(RATING_PROMPT_TOKENS.values())
            details = [{"modality": k, "tokenCount": v} for k, v in RATING_PROMPT_TOKENS.items()]
            body["usageMetadata"] = {
                "promptTokenCount": prompt,
                "candidatesTokenCount": RATING_OUTPUT_TOKENS,
                "totalTokenCount": prompt + RATING_OUTPUT_TOKENS,
                "promptTokensDetails": details,
            }
        return Reply(200, body)

    def _cancel(self, name: str) -> Reply:
        operation = self.started.get(name)
        if operation is None:
            return Reply(404, error_body(404, "NOT_FOUND", "Operation not found."))
        operation.cancelled = operation.polls_left > 0  # a finished one stays as it ended
        return Reply(200, {})

    def _result(self, operation: Operation) -> dict:
        kind = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
        if operation.cancelled:
            return {"error": {"code": 1, "message": "Operation was cancelled."}}
        if self.final == "ERROR":
            return {"error": self.error}
        if self.final == "RAI_FILTERED":
            reasons = [SAFETY_REASON]
            response = {"raiMediaFilteredCount": 1, "raiMediaFilteredReasons": reasons}
            return {"response": {"@type": kind, **response}}
        uri = operation.storage_uri.rstrip("/") + "/sample_0.mp4"
        if self.final == "SUCCEEDED" and not self._write(uri, self.video(operation.name)):
            operation.write_failed = True
            return {"error": {"code": 7, "message": f"Cannot write to {operation.storage_uri}"}}
        video = {"gcsUri": uri, "mimeType": "video/mp4"}
        return {"response": {"@type": kind, "videos": [video], "raiMediaFilteredCount": 0}}

    def _write(self, uri: str, video: bytes) -> bool:
        """Write the video into the bucket; False when the bucket refuses it."""
        if not self.storage_host:
            return True
        bucket, _, name = uri.removeprefix("gs://").partition("/")
        query = urllib.parse.urlencode({"uploadType": "media", "name": name})
        url = f"{self.storage_host}/upload/storage/v1/b/{bucket}/o?{query}"
        request = urllib.request.Request(url, data=video, method="POST")
        request.add_header("content-type", "video/mp4")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                json.loads(response.read())
        except urllib.error.HTTPError:
            return False
        return True
