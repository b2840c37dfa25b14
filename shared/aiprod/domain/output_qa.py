"""Technical QA of a rendered video: pure rules over what a probe measured.

A provider can report SUCCEEDED for a video nobody should receive: black, frozen, cut short,
the wrong size, silent where sound was promised, or not a video at all. The probe
(``adapters/video_probe``, PyAV) measures; this module decides, so every threshold is here,
named, and tested without a file.

A failed check means the output is not delivered: the attempt fails ``qa_failed`` (FALLBACK),
charged what the provider reported (it did render), and the job falls back. The report, each
check with its measured value, is stored on the attempt and carried in the job event.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Protocol

from aiprod.domain.catalog import ModelSpec
from aiprod.domain.qa_report import QaCheck, QaReport, combined_score

# Frames sampled across the clip for the black and frozen checks.
SAMPLES = 8
# A frame is black when its mean luma (0-255; video black is 16) and its spread are this low.
# (A dim scene with any detail is not: video black is flat.)
BLACK_LUMA = 20.0
BLACK_SPREAD = 4.0
# The clip is black when at least this share of its sampled frames is (a fade in is not).
BLACK_SHARE = 0.75
# Two sampled frames show the same picture when no pixel of their 64x36 grey thumbnails
# (each the mean of a 20x20 patch at 720p) changed by more than this many luma levels: a
# small subject moving over a still background changes a few pixels a lot; compression
# noise of a still picture changes none by that much.
FROZEN_PIXEL_CHANGE = 12
# The clip is frozen when at least this share of consecutive sample pairs show the same
# picture (a still shot that moves once in a while is not; one that stops after 1 s is).
FROZEN_SHARE = 0.6
THUMB_SIZE = (64, 36)
FPS_RANGE = (8.0, 121.0)  # a sane frame rate, inclusive
ASPECT_TOLERANCE = 0.03  # relative (Wan's 832x480 is 2.5% off 16:9)
SIZE_TOLERANCE_PX = 8  # encoders round to macroblocks
DURATION_TOLERANCE_S = 0.5  # unless the model's catalog entry says otherwise
AUDIO_SHARE = 0.5  # promised audio must cover at least this share of the video
AUDIO_FLOOR = 0.001  # ...and somewhere be louder than -60 dBFS (a track of silence is none)
LINES = {"360p": 360, "480p": 480, "540p": 540, "720p": 720, "1080p": 1080, "4k": 2160}


@dataclass(frozen=True)
class FrameSample:
    """One decoded frame: where it is, its luma statistics, and a small grey thumbnail."""

    at_s: float
    luma_mean: float
    luma_spread: float
    thumb: bytes


@dataclass(frozen=True)
class VideoFacts:
    """What a probe measured. ``error`` set: the file did not open or decode."""

    error: str = ""
    container: str = ""
    codec: str = ""
    width: int = 0
    height: int = 0
    fps: float = 0.0
    duration_s: float = 0.0
    audio_s: float = 0.0  # seconds of audio packets (0: no audio stream, or an empty one)
    audio_peak: float = 0.0  # the loudest sample heard, 0-1 of full scale
    samples: tuple[FrameSample, ...] = ()
    size_bytes: int = 0


class RequestShape(Protocol):
    duration_s: int
    resolution: str
    aspect_ratio: str
    input_kind: str


@dataclass(frozen=True)
class Expectation:
    """What the request and the model's catalog entry promise."""

    duration_s: float
    tolerance_s: float
    short_side: int
    aspect: float
    exact_size: tuple[int, int] | None = None  # the provider names its size (Runway's ratio)
    audio: bool = False


def expectation_for(request: RequestShape, spec: ModelSpec) -> Expectation:
    width, height = _aspect_parts(request.aspect_ratio)
    named = spec.ratios.get(request.input_kind, {}).get(request.aspect_ratio)  # type: ignore[call-overload]
    exact = _aspect_parts(named) if named else None
    return Expectation(
        duration_s=float(request.duration_s),
        tolerance_s=spec.duration_tolerance_s or DURATION_TOLERANCE_S,
        short_side=LINES.get(request.resolution, 0),
        aspect=width / height,
        exact_size=exact,
        audio=bool(spec.generate_audio),
    )


def assess(facts: VideoFacts, expected: Expectation) -> QaReport:
    """Every check of one output, in a fixed order."""
    if facts.error:
        check = QaCheck(name="decodes", passed=False, measured=facts.error, expected="a video")
        return _report([check])
    checks = [
        QaCheck(
            name="decodes",
            passed=bool(facts.codec) and bool(facts.samples),
            measured=f"{facts.container}/{facts.codec}",
            expected="a decodable video stream",
        ),
        _duration(facts, expected),
        _size(facts, expected),
        _aspect(facts, expected),
        QaCheck(
            name="frame_rate",
            passed=FPS_RANGE[0] <= facts.fps <= FPS_RANGE[1],
            measured=round(facts.fps, 3),
            expected=f"{FPS_RANGE[0]:g}-{FPS_RANGE[1]:g} fps",
        ),
        _not_black(facts.samples),
        _not_frozen(facts.samples),
    ]
    if expected.audio:
        share = facts.audio_s / facts.duration_s if facts.duration_s else 0.0
        checks.append(
            QaCheck(
                name="audio",
                passed=share >= AUDIO_SHARE,
                measured=round(facts.audio_s, 3),
                expected=f">= {AUDIO_SHARE:.0%} of the video with sound",
            )
        )
        checks.append(
            QaCheck(
                name="audio_level",
                passed=facts.audio_peak >= AUDIO_FLOOR,
                measured=round(facts.audio_peak, 6),
                expected=f"a peak >= {AUDIO_FLOOR} of full scale (-60 dBFS)",
            )
        )
    return _report(checks)


def _report(checks: list[QaCheck]) -> QaReport:
    failed = [c.name for c in checks if not c.passed]
    return QaReport(
        passed=not failed,
        checks=checks,
        reason=", ".join(failed),
        score=combined_score(not failed, None),
    )


def _duration(facts: VideoFacts, expected: Expectation) -> QaCheck:
    off = abs(facts.duration_s - expected.duration_s)
    return QaCheck(
        name="duration",
        passed=off <= expected.tolerance_s,
        measured=round(facts.duration_s, 3),
        expected=f"{expected.duration_s:g} s ± {expected.tolerance_s:g}",
    )


def _size(facts: VideoFacts, expected: Expectation) -> QaCheck:
    measured = f"{facts.width}x{facts.height}"
    if expected.exact_size is not None:
        want_w, want_h = expected.exact_size
        passed = _near(facts.width, want_w) and _near(facts.height, want_h)
        return QaCheck(name="resolution", passed=passed, measured=measured,
                       expected=f"{want_w}x{want_h}")  # fmt: skip
    short = min(facts.width, facts.height)
    passed = expected.short_side == 0 or _near(short, expected.short_side)
    return QaCheck(name="resolution", passed=passed, measured=measured,
                   expected=f"short side {expected.short_side} px")  # fmt: skip


def _aspect(facts: VideoFacts, expected: Expectation) -> QaCheck:
    want = expected.aspect
    if expected.exact_size is not None:
        want = expected.exact_size[0] / expected.exact_size[1]
    got = facts.width / facts.height if facts.height else 0.0
    passed = abs(got - want) <= ASPECT_TOLERANCE * want
    return QaCheck(name="aspect_ratio", passed=passed, measured=round(got, 4),
                   expected=f"{want:.4f} ± {ASPECT_TOLERANCE:.0%}")  # fmt: skip


def _not_black(samples: tuple[FrameSample, ...]) -> QaCheck:
    black = [s for s in samples if s.luma_mean <= BLACK_LUMA and s.luma_spread <= BLACK_SPREAD]
    share = len(black) / len(samples) if samples else 1.0
    return QaCheck(
        name="not_black",
        passed=share < BLACK_SHARE,
        measured=round(share, 3),
        expected=f"< {BLACK_SHARE:.0%} of sampled frames black",
    )


def _not_frozen(samples: tuple[FrameSample, ...]) -> QaCheck:
    """The share of consecutive sample pairs that show the same picture (a clip of one
    sample has no motion to show, and fails)."""
    pairs = list(itertools.pairwise(samples))
    same = [a for a, b in pairs if largest_change(a.thumb, b.thumb) <= FROZEN_PIXEL_CHANGE]
    share = len(same) / len(pairs) if pairs else 1.0
    return QaCheck(
        name="not_frozen",
        passed=share < FROZEN_SHARE,
        measured=round(share, 3),
        expected=f"< {FROZEN_SHARE:.0%} of sampled frames unchanged from the one before",
    )


def largest_change(a: bytes, b: bytes) -> int:
    """The largest luma change of any pixel between two grey thumbnails of one size."""
    if not a or len(a) != len(b):
        return 255
    return max(abs(x - y) for x, y in zip(a, b, strict=True))


def luma_stats(thumb: bytes) -> tuple[float, float]:
    """Mean and standard deviation of a grey thumbnail's values."""
    if not thumb:
        return 0.0, 0.0
    mean = sum(thumb) / len(thumb)
    variance = sum((v - mean) ** 2 for v in thumb) / len(thumb)
    return mean, variance**0.5


def _near(got: int, want: int) -> bool:
    return abs(got - want) <= SIZE_TOLERANCE_PX


def _aspect_parts(text: str) -> tuple[int, int]:
    width, _, height = text.replace("x", ":").partition(":")
    return int(width), int(height)
