"""The detection table: every defect class output QA knows is caught, with its reason, on
every provider path (Runway's and Replicate's outputs streamed from a URL, Veo's read from
the bucket it wrote into), and good clips of every shape are never rejected.

The live adapters run against the provider fakes, which render real PyAV clips
(``support.media``) shaped like each request, with the scripted defect.
"""

from __future__ import annotations

import pytest

from aiprod.domain.error_codes import ErrorCode
from aiprod.domain.messages import ErrorClass
from support.live import live_backend, render, render_task

# defect → the check that must fail (other checks may fail too: a black clip is also frozen)
CAUGHT_BY = {
    "black": "not_black",
    "frozen": "not_frozen",
    "short": "duration",
    "long": "duration",
    "wrong_size": "resolution",
    "corrupt": "decodes",
    "garbage": "decodes",
}
VEO_AUDIO_MODEL = "veo-3.1-generate-001"  # promises sound (catalog: generate_audio)
PATHS = ("runway", "replicate", "veo")


@pytest.fixture
def backends(live_env):
    return {name: live_backend(live_env, name, veo_project="proj-veo") for name in PATHS}


def _task(path: str, model: str | None = None, **request):
    task = render_task(path, **request)
    return task if model is None else task.model_copy(update={"model": model})


@pytest.mark.parametrize("defect", list(CAUGHT_BY))
@pytest.mark.parametrize("path", PATHS)
def test_every_defect_is_caught_with_its_reason(backends, fakes, path, defect):
    # GIVEN a provider that renders a defective video
    getattr(fakes, path).output_defect = defect

    # WHEN a job renders on it through the live adapter
    done = render(backends[path], _task(path))

    # THEN the attempt fails qa_failed (FALLBACK), charged, and the report names the check
    result = done.result
    assert (result.error_class, result.error_code) == (ErrorClass.FALLBACK, ErrorCode.QA_FAILED)
    assert result.cost_micros > 0, "the provider rendered it: it is charged"
    assert result.output_uri is None, "a rejected output is never delivered"
    assert CAUGHT_BY[defect] in result.qa.failed_checks, result.qa.reason
    assert not result.qa.passed and result.qa.score == 0.0
    assert CAUGHT_BY[defect] in result.message


def test_missing_sound_is_caught_where_the_model_promises_it(backends, fakes):
    # GIVEN Veo 3.1 (with audio) renders a silent video
    fakes.veo.output_defect = "no_audio"

    done = render(backends["veo"], _task("veo", VEO_AUDIO_MODEL))

    assert done.result.error_code == ErrorCode.QA_FAILED
    assert done.result.qa.failed_checks == ["audio", "audio_level"]


def test_a_silent_video_passes_where_no_sound_was_promised(backends, fakes):
    fakes.runway.output_defect = "no_audio"

    done = render(backends["runway"], _task("runway"))

    assert done.result.error_class is None and done.result.qa.passed
    assert "audio" not in [check.name for check in done.result.qa.checks]


GOOD = [
    ("runway", None, {"aspect_ratio": "16:9"}),
    ("runway", None, {"aspect_ratio": "9:16", "duration_s": 10}),
    ("runway", "gen4_turbo", {"aspect_ratio": "1:1", "image": True}),
    ("replicate", None, {"resolution": "480p"}),
    ("replicate", None, {"resolution": "720p", "aspect_ratio": "9:16"}),
    ("veo", None, {"resolution": "1080p", "duration_s": 4}),
    ("veo", VEO_AUDIO_MODEL, {"aspect_ratio": "9:16", "duration_s": 6}),
]


@pytest.mark.parametrize(("path", "model", "request_fields"), GOOD)
def test_good_clips_are_never_rejected(backends, path, model, request_fields):
    fields = dict(request_fields)
    image = fields.pop("image", False)

    done = render(backends[path], _task(path, model, image=image, **fields))

    # THEN it is delivered, every check passed, measured quality 1
    assert done.result.error_class is None, done.result.message
    report = done.result.qa
    assert report.passed and report.score == 1.0, report.reason
    assert report.checked_uri == done.result.output_uri
    measured = {check.name: check.value for check in report.checks}
    assert measured["duration"] == pytest.approx(
        fields.get("duration_s", 8 if path == "veo" else 5), abs=0.1
    )
