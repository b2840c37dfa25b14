"""Runway's API as the ``runwayml`` SDK (5.24) sees it: ``POST /v1/text_to_video``,
``POST /v1/image_to_video``, ``GET /v1/tasks/{id}`` (PENDING / THROTTLED / RUNNING /
SUCCEEDED / FAILED / CANCELLED, each with every field its SDK class requires).

It refuses what the real API refuses: no ``Authorization: Bearer <key>`` → 401, a missing or
wrong ``X-Runway-Version`` → 400, a body missing a required field or with a ratio the model
does not take → 400 ``{"error": ...}``. Routes for ``queue``: ``create``, ``task``, ``usage``,
``cancel``.

``DELETE /v1/tasks/{id}`` (204) is Runway's "cancel or delete": every call is recorded in
``cancelled`` (task ids). A task a look last showed RUNNING is cancelled and not refunded,
one never looked at (PENDING) or last THROTTLED is refunded (runwayml 5.24 ``tasks.delete``:
refunds depend on the status the server sees); a task that already ended is deleted, keeping
its charge. Either way its later looks read CANCELLED with the ``cost.credits`` it keeps
(the SDK's ``Cancelled``: "a cancelled or deleted task"). A second DELETE, like one for a
task never created, is 404.

``POST /v1/organization/usage`` (``{"startDate", "beforeDate"}``, UTC days, the end excluded)
answers the credits each day and model used: every task started, at its model's price when
the fake's tasks succeed (``final``), 0 otherwise, on the day of its ``createdAt``.

The bill: a SUCCEEDED task is charged its credits (model's credits per second times duration,
1 credit = 10,000 micro-USD), what the task reports as ``cost.credits``; a FAILED or
CANCELLED one reports 0 credits and is charged nothing; a task cancelled through DELETE is
charged what it keeps (above).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fakes.base import FakeServer, Recorded, Reply
from support.media import ClipSpec

API_VERSION = "2024-11-06"
CREATED_AT = "2027-01-15T08:00:00.000Z"
CREDITS_PER_S = {"gen4_turbo": 5, "gen4.5": 12}
MICROS_PER_CREDIT = 10_000
RATIOS = {
    "text_to_video": {"gen4.5": {"1280:720", "720:1280"}},
    "image_to_video": {
        "gen4.5": {"1280:720", "720:1280", "1104:832", "960:960", "832:1104", "1584:672"},
        "gen4_turbo": {"1280:720", "720:1280", "1104:832", "832:1104", "960:960", "1584:672"},
    },
}
REQUIRED = {"text_to_video": ("model", "promptText", "ratio", "duration")}
REQUIRED["image_to_video"] = ("model", "promptImage", "ratio")


@dataclass
class Task:
    id: str
    model: str
    duration: int
    polls_left: int
    looks: int = 0
    shown: str = "PENDING"  # the status its last look answered
    kept_credits: int | None = None  # set by a DELETE: what the CANCELLED task is charged


class RunwayFake(FakeServer):
    def __init__(self, api_key: str = "rw-test-key-0123456789") -> None:
        super().__init__()
        self.api_key = api_key
        self.polls_before_done = 1
        self.final = "SUCCEEDED"
        self.failure_code: str | None = None
        self.failure = "The task failed."
        self.report_cost = True
        self.throttled_polls = 0  # the first looks at each task answer THROTTLED (Runway's queue)
        self.started: dict[str, Task] = {}
        self.cancelled: list[str] = []  # task ids, one per DELETE /v1/tasks/{id}

    def dispatch(self, request: Recorded) -> Reply:
        path = request.path.split("?")[0]
        if path.startswith("/outputs/"):
            return super().dispatch(request)
        refused = self._refuse(request)
        if refused:
            return refused
        if request.method == "POST" and path in ("/v1/text_to_video", "/v1/image_to_video"):
            endpoint = path.removeprefix("/v1/")
            return self.answer("create", lambda: self._create(endpoint, request))
        if request.method == "GET" and path.startswith("/v1/tasks/"):
            return self.scripted("task") or self._task(path.removeprefix("/v1/tasks/"))
        if request.method == "POST" and path == "/v1/organization/usage":
            return self.scripted("usage") or self._usage(request.json() or {})
        if request.method == "DELETE" and path.startswith("/v1/tasks/"):
            task_id = path.removeprefix("/v1/tasks/")
            self.cancelled.append(task_id)
            return self.answer("cancel", lambda: self._delete(task_id))
        return super().dispatch(request)

    def price(self, task: Task) -> int:
        if task.kept_credits is not None:
            return task.kept_credits * MICROS_PER_CREDIT
        if self.final != "SUCCEEDED":
            return 0
        return CREDITS_PER_S[task.model] * task.duration * MICROS_PER_CREDIT

    def _refuse(self, request: Recorded) -> Reply | None:
        if request.header("authorization") != f"Bearer {self.api_key}":
            return Reply(401, {"error": "Invalid API key"})
        if request.header("x-runway-version") != API_VERSION:
            return Reply(400, {"error": "X-Runway-Version header is missing or invalid"})
        return None

    def _create(self, endpoint: str, request: Recorded) -> Reply:
        body = request.json() or {}
        missing = [name for name in REQUIRED[endpoint] if name not in body]
        ratios = RATIOS[endpoint].get(body.get("model"), set())
        if missing or body.get("ratio") not in ratios:
            return Reply(400, {"error": f"Validation of body failed: {missing or 'ratio'}"})
        task = Task(str(uuid.uuid4()), body["model"], int(body.get("duration", 5)), 0)
        task.polls_left = self.polls_before_done
        self.started[task.id] = task
        width, height = (int(n) for n in body["ratio"].split(":"))
        self.shape(task.id, ClipSpec(width=width, height=height, duration_s=task.duration))
        credits = CREDITS_PER_S[task.model] * task.duration
        return Reply(200, {"id": task.id, "estimatedCost": {"credits": credits}})

    def _usage(self, body: dict) -> Reply:
        day = CREATED_AT[:10]
        if not body.get("startDate", day) <= day < body.get("beforeDate", "9999-12-31"):
            return Reply(200, {"models": [], "results": []})
        used: dict[str, int] = {}
        for task in self.started.values():
            used[task.model] = used.get(task.model, 0) + self.price(task) // MICROS_PER_CREDIT
        spent = [{"amount": amount, "model": model} for model, amount in used.items()]
        return Reply(
            200, {"models": sorted(used), "results": [{"date": day, "usedCredits": spent}]}
        )

    def _delete(self, task_id: str) -> Reply:
        task = self.started.get(task_id)
        if task is None or task.kept_credits is not None:
            return Reply(404, {"error": "Task not found"})
        credits = CREDITS_PER_S[task.model] * task.duration
        if task.shown in ("PENDING", "THROTTLED"):
            task.kept_credits = 0  # refunded
        elif task.shown == "RUNNING":
            task.kept_credits = credits  # observed RUNNING: no refund
        else:
            task.kept_credits = self.price(task) // MICROS_PER_CREDIT  # deleted, charge kept
        return Reply(204, b"")

    def _task(self, task_id: str) -> Reply:
        task = self.started.get(task_id)
        if task is None:
            return Reply(404, {"error": "Task not found"})
        credits = CREDITS_PER_S[task.model] * task.duration
        common = {"id": task.id, "createdAt": CREATED_AT}
        if task.kept_credits is not None:
            return Reply(
                200, {**common, "status": "CANCELLED", "cost": {"credits": task.kept_credits}}
            )
        task.looks += 1
        if task.looks <= self.throttled_polls:
            task.shown = "THROTTLED"
            return Reply(
                200, {**common, "status": "THROTTLED", "estimatedCost": {"credits": credits}}
            )
        if task.polls_left > 0:
            task.polls_left -= 1
            task.shown = "RUNNING"
            running = {"status": "RUNNING", "progress": 0.5, "estimatedCost": {"credits": credits}}
            return Reply(200, {**common, **running})
        task.shown = self.final
        return Reply(200, {**common, **self._final(task, credits)})

    def _final(self, task: Task, credits: int) -> dict:
        if self.final == "SUCCEEDED":
            done = {"status": "SUCCEEDED", "output": [self.output_url(f"{task.id}.mp4")]}
            return {**done, "cost": {"credits": credits}} if self.report_cost else done
        if self.final == "FAILED":
            failure = {"status": "FAILED", "failure": self.failure, "cost": {"credits": 0}}
            return {**failure, "failureCode": self.failure_code} if self.failure_code else failure
        return {"status": self.final, "cost": {"credits": 0}}
