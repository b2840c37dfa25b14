"""Replicate's predictions API as the ``replicate`` SDK (1.0.7) sees it:
``POST /v1/models/{owner}/{name}/predictions`` (201) and ``GET /v1/predictions/{id}``, with
statuses starting → processing → succeeded / failed / canceled / aborted, and errors as
problem details ``{"title", "detail", "status"}``.

No ``Authorization: Bearer <token>`` → 401; a body without ``input.prompt`` → 422.
Routes for ``queue``: ``create``, ``prediction``, ``list``, ``cancel``.

``POST /v1/predictions/{id}/cancel`` answers the prediction as it now stands, and every call
is recorded in ``cancelled`` (prediction ids). One still processing is ``canceled``, having
run ``cancel_predict_time`` seconds (``metrics.predict_time``); one that already finished is
left as it is; an unknown id is 404.

``GET /v1/predictions`` lists every prediction made with the token, newest first, in pages of
``page_size`` (``{"previous", "next", "results"}``, ``next`` the URL of the next page with
its ``cursor``), each as ``GET /v1/predictions/{id}`` would show it now (without counting a
poll).

The bill: the Wan fast models are billed per output video, by resolution (``PRICES``, the
catalog's figures), only for a prediction that succeeded; a failed, canceled or aborted one
(canceled through the API too) is charged nothing.
"""

from __future__ import annotations

import re
import urllib.parse
import uuid
from dataclasses import dataclass

from fakes.base import FakeServer, Recorded, Reply
from support.media import ClipSpec, spec_for

CREATE_PATH = re.compile(r"^/v1/models/(?P<owner>[^/]+)/(?P<name>[^/]+)/predictions$")
CREATED_AT = "2027-01-15T08:00:00.000000Z"
WAN_FAST = {"480p": 50_000, "720p": 100_000}  # micro-USD per output video
PRICES = {"wan-video/wan-2.2-t2v-fast": WAN_FAST, "wan-video/wan-2.2-i2v-fast": WAN_FAST}


@dataclass
class Prediction:
    id: str
    model: str
    input: dict
    polls_left: int
    polled: int = 0
    ran_s: float | None = None  # set by a cancel: it reads canceled, having run this long


def problem(status: int, title: str, detail: str) -> dict:
    return {"title": title, "detail": detail, "status": status}


class ReplicateFake(FakeServer):
    def __init__(self, token: str = "r8_test_token_0123456789") -> None:
        super().__init__()
        self.token = token
        self.polls_before_done = 1
        self.final = "succeeded"  # or failed, canceled, aborted
        self.error = "Prediction failed."
        self.predict_time = 38.2
        self.output_as_list = False
        self.page_size = 100  # predictions per page of GET /v1/predictions
        self.cancel_predict_time = 12.5  # seconds a prediction canceled while processing ran
        self.started: dict[str, Prediction] = {}
        self.cancelled: list[str] = []  # prediction ids, one per POST .../cancel

    def dispatch(self, request: Recorded) -> Reply:
        path = request.path.split("?")[0]
        if path.startswith("/outputs/"):
            return super().dispatch(request)
        if request.header("authorization") != f"Bearer {self.token}":
            detail = "You did not pass a valid authentication token"
            return Reply(401, problem(401, "Unauthenticated", detail))
        match = CREATE_PATH.match(path)
        if request.method == "POST" and match:
            model = f"{match['owner']}/{match['name']}"
            return self.answer("create", lambda: self._create(model, request.json() or {}))
        if request.method == "GET" and path == "/v1/predictions":
            return self.scripted("list") or self._list(request.path)
        if (
            request.method == "POST"
            and path.startswith("/v1/predictions/")
            and path.endswith("/cancel")
        ):
            prediction_id = path.removeprefix("/v1/predictions/").removesuffix("/cancel")
            self.cancelled.append(prediction_id)
            found = self.started.get(prediction_id)
            return self.answer("cancel", lambda: self._cancel(found))
        if request.method == "GET" and path.startswith("/v1/predictions/"):
            found = self.started.get(path.removeprefix("/v1/predictions/"))
            return self.scripted("prediction") or self._prediction(found)
        return super().dispatch(request)

    def price(self, prediction: Prediction) -> int:
        if prediction.ran_s is not None or self.final != "succeeded":
            return 0
        return PRICES[prediction.model][prediction.input.get("resolution", "720p")]

    def _create(self, model: str, body: dict) -> Reply:
        model_input = body.get("input")
        if not isinstance(model_input, dict) or not model_input.get("prompt"):
            return Reply(422, problem(422, "Input validation failed", "- input.prompt: required"))
        prediction = Prediction(str(uuid.uuid4()), model, model_input, self.polls_before_done)
        self.started[prediction.id] = prediction
        self.shape(prediction.id, wan_clip(model_input))
        return Reply(201, self._json(prediction, "starting"))

    def _cancel(self, prediction: Prediction | None) -> Reply:
        if prediction is None:
            return Reply(404, problem(404, "Not found", "The requested resource was not found"))
        if prediction.ran_s is None and prediction.polls_left > 0:
            prediction.ran_s = self.cancel_predict_time
        return Reply(200, self._json(prediction, self._now(prediction)))

    def _now(self, prediction: Prediction) -> str:
        """Its status as it stands, without counting a look."""
        if prediction.ran_s is not None:
            return "canceled"
        return self.final if prediction.polls_left <= 0 else "processing"

    def _list(self, path: str) -> Reply:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
        start = int((query.get("cursor") or ["0"])[0])
        newest = list(reversed(list(self.started.values())))
        page = newest[start : start + self.page_size]
        more = start + self.page_size < len(newest)
        following = f"{self.url}/v1/predictions?cursor={start + self.page_size}" if more else None
        before = f"{self.url}/v1/predictions?cursor={max(0, start - self.page_size)}"
        results = [self._json(p, self._now(p)) for p in page]
        return Reply(
            200, {"previous": before if start else None, "next": following, "results": results}
        )

    def _prediction(self, prediction: Prediction | None) -> Reply:
        if prediction is None:
            return Reply(404, problem(404, "Not found", "The requested resource was not found"))
        prediction.polled += 1
        if prediction.ran_s is not None:
            return Reply(200, self._json(prediction, "canceled"))
        if prediction.polls_left > 0:
            prediction.polls_left -= 1
            return Reply(200, self._json(prediction, "processing"))
        return Reply(200, self._json(prediction, self.final))

    def _json(self, prediction: Prediction, status: str) -> dict:
        get = f"{self.url}/v1/predictions/{prediction.id}"
        output = None
        if status == "succeeded":
            url = self.output_url(f"{prediction.id}.mp4")
            output = [url] if self.output_as_list else url
        finished = status in ("succeeded", "failed", "canceled", "aborted")
        seconds = self.predict_time if prediction.ran_s is None else prediction.ran_s
        return {
            "id": prediction.id,
            "model": prediction.model,
            "version": "hidden",
            "status": status,
            "input": prediction.input,
            "output": output,
            "error": self.error if status == "failed" else None,
            "logs": "",
            "metrics": {"predict_time": seconds} if finished else {},
            "created_at": CREATED_AT,
            "urls": {"get": get, "cancel": f"{get}/cancel"},
        }


def wan_clip(model_input: dict) -> ClipSpec:
    """What a Wan model renders: ``num_frames`` at ``frames_per_second`` (81 at 16: 5.06 s),
    in the asked resolution and ratio (an image's own ratio is taken as 16:9 here)."""
    fps = int(model_input.get("frames_per_second", 16))
    seconds = int(model_input.get("num_frames", 81)) / fps
    resolution = model_input.get("resolution", "720p")
    return spec_for(resolution, model_input.get("aspect_ratio", "16:9"), seconds, fps=fps)
