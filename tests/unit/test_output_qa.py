"""The technical QA rules (``domain/output_qa``) over measured facts, without a file: each
threshold at its edge, and what the request and the catalog promise."""

from __future__ import annotations

import io

import pytest

from aiprod.adapters.output_checks import OutputTooLargeError, copy_bounded
from aiprod.domain import output_qa as qa
from aiprod.domain.catalog import default_catalog
from aiprod.domain.messages import JobRequest
from aiprod.domain.output_qa import Expectation, FrameSample, VideoFacts, assess, expectation_for
from aiprod.domain.qa_report import QaCheck, combined_score

CATALOG = default_catalog()
EXPECT = Expectation(duration_s=5, tolerance_s=0.5, short_side=720, aspect=16 / 9)
THUMB = qa.THUMB_SIZE[0] * qa.THUMB_SIZE[1]


def sample(at: float, level: int = 120, spread: float = 40.0, thumb: bytes | None = None):
    picture = thumb if thumb is not None else bytes([level]) * THUMB
    return FrameSample(at_s=at, luma_mean=float(level), luma_spread=spread, thumb=picture)


def moving(count: int = 8) -> tuple[FrameSample, ...]:
    return tuple(sample(i * 0.6, thumb=bytes([(40 + 20 * i) % 250]) * THUMB) for i in range(count))


def facts(**changes) -> VideoFacts:
    base = dict(
        container="mov", codec="h264", width=1280, height=720, fps=24.0, duration_s=5.0,
        samples=moving(),
    )  # fmt: skip
    return VideoFacts(**{**base, **changes})


def failed(report) -> list[str]:
    return report.failed_checks


def test_a_clean_clip_passes_every_check_and_scores_one():
    report = assess(facts(), EXPECT)

    assert report.passed and report.score == 1.0 and report.reason == ""
    names = [c.name for c in report.checks]
    assert names == [
        "decodes", "duration", "resolution", "aspect_ratio", "frame_rate", "not_black",
        "not_frozen",
    ]  # fmt: skip


def test_a_file_that_does_not_decode_fails_with_the_reason():
    report = assess(VideoFacts(error="Invalid data found when processing input"), EXPECT)

    assert failed(report) == ["decodes"] and report.score == 0.0
    assert report.checks[0].measured == "Invalid data found when processing input"


@pytest.mark.parametrize(
    ("duration", "ok"), [(5.5, True), (4.5, True), (5.51, False), (4.4, False), (2.0, False)]
)
def test_duration_is_checked_within_the_tolerance(duration, ok):
    assert ("duration" not in failed(assess(facts(duration_s=duration), EXPECT))) is ok


@pytest.mark.parametrize(
    ("size", "ok"),
    [((1280, 720), True), ((1280, 728), True), ((640, 360), False), ((720, 1280), False)],
)
def test_size_and_ratio_are_those_asked(size, ok):
    width, height = size
    report = assess(facts(width=width, height=height), EXPECT)
    assert (not {"resolution", "aspect_ratio"} & set(failed(report))) is ok


@pytest.mark.parametrize(("fps", "ok"), [(8, True), (121, True), (7.9, False), (1000, False)])
def test_the_frame_rate_must_be_sane(fps, ok):
    assert ("frame_rate" not in failed(assess(facts(fps=fps), EXPECT))) is ok


def test_a_fade_in_is_not_black_but_a_mostly_black_clip_is():
    dark, lit = sample(0, level=16, spread=1), moving()
    fade_in = (dark, dark, *lit[2:])  # 2 of 8 black
    mostly = (dark,) * 6 + lit[6:]  # 6 of 8 black

    assert "not_black" not in failed(assess(facts(samples=fade_in), EXPECT))
    report = assess(facts(samples=mostly), EXPECT)
    assert "not_black" in failed(report)
    assert next(c for c in report.checks if c.name == "not_black").value == 0.75


def test_a_dark_scene_with_detail_is_not_black():
    night = tuple(
        sample(i, level=22, spread=qa.BLACK_SPREAD + 5, thumb=t.thumb)
        for i, t in enumerate(moving())
    )
    assert "not_black" not in failed(assess(facts(samples=night), EXPECT))


def _subject_at(position: int) -> bytes:
    """A still grey picture with one bright pixel (a small subject) at ``position``."""
    picture = bytearray([120]) * THUMB
    picture[position] = 250
    return bytes(picture)


def test_one_picture_throughout_is_frozen():
    report = assess(facts(samples=(sample(0),) * 8), EXPECT)
    assert "not_frozen" in failed(report)
    assert next(c for c in report.checks if c.name == "not_frozen").value == 1.0


def test_a_small_subject_moving_over_a_still_scene_is_not_frozen():
    crossing = tuple(sample(i, thumb=_subject_at(500 + 3 * i)) for i in range(8))
    assert "not_frozen" not in failed(assess(facts(samples=crossing), EXPECT))


def test_compression_noise_is_not_motion():
    noisy = tuple(sample(i, thumb=bytes([120 + i % 3]) * THUMB) for i in range(8))
    assert "not_frozen" in failed(assess(facts(samples=noisy), EXPECT))


def test_a_clip_that_stops_moving_early_is_frozen_one_that_pauses_is_not():
    lit = moving()
    stops = (*lit[:3], *(sample(3 + i, thumb=lit[2].thumb) for i in range(5)))  # 5 of 7 pairs
    pauses = (*lit[:5], *(sample(5 + i, thumb=lit[4].thumb) for i in range(3)))  # 3 of 7

    assert "not_frozen" in failed(assess(facts(samples=stops), EXPECT))
    assert "not_frozen" not in failed(assess(facts(samples=pauses), EXPECT))


def test_one_sample_has_no_motion_to_show_and_fails():
    assert "not_frozen" in failed(assess(facts(samples=moving(1)), EXPECT))


def test_sound_is_checked_only_where_the_model_promises_it():
    with_sound = Expectation(**{**EXPECT.__dict__, "audio": True})

    missing = assess(facts(audio_s=0.0), with_sound)
    half = assess(facts(audio_s=2.5, audio_peak=0.2), with_sound)
    hush = assess(facts(audio_s=5.0, audio_peak=0.0005), with_sound)
    unpromised = assess(facts(audio_s=0.0), EXPECT)

    assert failed(missing) == ["audio", "audio_level"] and half.passed
    assert failed(hush) == ["audio_level"]
    assert not {"audio", "audio_level"} & {c.name for c in unpromised.checks}


def test_the_expectation_comes_from_the_request_and_the_catalog():
    runway = CATALOG.model("runway", "gen4_turbo")
    image = "https://images.example.com/a.png"
    square = JobRequest(job_id="j", prompt="p", image_uri=image, aspect_ratio="1:1")
    veo = CATALOG.model("veo", "veo-3.1-generate-001")
    tall = JobRequest(job_id="j", prompt="p", duration_s=8, resolution="1080p", aspect_ratio="9:16")
    wan = CATALOG.model("replicate", "wan-video/wan-2.2-t2v-fast")

    # Runway names its size (960:960), Veo's comes from the lines, Veo 3.1 promises sound,
    # and Wan's 81 frames at 16 fps are measured against its own tolerance
    assert expectation_for(square, runway).exact_size == (960, 960)
    exp = expectation_for(tall, veo)
    assert (exp.short_side, round(exp.aspect, 4), exp.audio) == (1080, 0.5625, True)
    assert expectation_for(JobRequest(job_id="j", prompt="p"), wan).tolerance_s == 0.25


def test_combined_score_is_zero_on_a_technical_failure_else_the_rating():
    assert combined_score(False, 0.9) == 0.0
    assert combined_score(True, None) == 1.0
    assert combined_score(True, 0.42) == 0.42


def test_a_check_keeps_its_number_apart_from_its_text():
    number = QaCheck(name="duration", passed=True, measured=5.0625)
    text = QaCheck(name="decodes", passed=True, measured="mov/h264")

    assert (number.measured, number.value) == ("5.0625", 5.0625)
    assert (text.measured, text.value) == ("mov/h264", None)
    assert QaCheck.model_validate(number.model_dump()) == number  # stored and read back


def test_a_download_is_bounded_in_size_and_in_time():
    with pytest.raises(OutputTooLargeError):
        copy_bounded(io.BytesIO(bytes(3000)), io.BytesIO(), limit=2000)
    ticks = iter(range(0, 1000, 100))  # each read takes 100 s on this clock
    with pytest.raises(TimeoutError):
        copy_bounded(io.BytesIO(bytes(3 * 2**20)), io.BytesIO(), deadline_s=150,
                     clock=lambda: next(ticks))  # fmt: skip
    assert copy_bounded(io.BytesIO(b"video"), io.BytesIO()) == 5
