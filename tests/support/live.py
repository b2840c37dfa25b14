"""Driving a live adapter directly, the way the render function does: submit once, then look
at the task until it is done (a bounded number of looks, no sleeping: the fakes are local)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from aiprod.adapter_tables import make_backend
from aiprod.config import ProviderSettings, Settings
from aiprod.domain.catalog import default_catalog
from aiprod.domain.messages import JobRequest, RenderTask
from aiprod.exceptions import ProviderError
from aiprod.ports import ProviderResult, VideoBackend
from aiprod.services.provider_calls import result_of

MODELS = {
    ("runway", "text"): "gen4.5",
    ("runway", "image"): "gen4_turbo",
    ("veo", "text"): "veo-3.1-fast-generate-001",
    ("veo", "image"): "veo-3.1-fast-generate-001",
    ("replicate", "text"): "wan-video/wan-2.2-t2v-fast",
    ("replicate", "image"): "wan-video/wan-2.2-i2v-fast",
}
IMAGE = "https://images.example.com/bottle.png"


def live_settings(env: dict[str, str], **providers: object) -> Settings:
    settings = ProviderSettings.from_env(env.get)
    return Settings(provider_mode="live", providers=replace(settings, **providers))


def live_backend(env: dict[str, str], name: str, **providers: object) -> VideoBackend:
    """The adapter bootstrap builds for ``name`` in live mode (outputs kept), on the fakes."""
    return make_backend(name, live_settings(env, **providers), default_catalog(), None)


def render_task(backend: str, image: bool = False, **request: object) -> RenderTask:
    model = MODELS[(backend, "image" if image else "text")]
    fields = {"job_id": "job-1", "prompt": "a paper boat in the rain", **request}
    if image:
        fields["image_uri"] = IMAGE
    if backend == "veo":
        fields.setdefault("duration_s", 8)
    return RenderTask(
        job_id=str(fields["job_id"]),
        attempt=1,
        backend=backend,
        model=model,
        request=JobRequest(**fields),
        hold_micros=1,
    )


@dataclass
class Rendered:
    task_id: str | None
    result: ProviderResult
    looks: int


def render(backend: VideoBackend, task: RenderTask, max_looks: int = 10) -> Rendered:
    """Submit, then poll until done or ``max_looks`` (then the result is "not done")."""
    try:
        task_id = backend.submit(task)
    except ProviderError as exc:
        return Rendered(None, result_of(exc), 0)
    result = ProviderResult(done=False)
    for look in range(1, max_looks + 1):
        try:
            result = backend.poll(task_id, task)
        except ProviderError as exc:
            return Rendered(task_id, result_of(exc), look)
        if result.done:
            return Rendered(task_id, result, look)
    return Rendered(task_id, result, max_looks)
