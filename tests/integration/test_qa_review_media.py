"""Adversarial review of output QA's verdicts (issue 14): real clips (PyAV) a provider could
send, checked as KeptOutputs checks them (``OutputChecker.check_file``: the probe, then the
rules of ``domain/output_qa``). Each test is a good clip that was rejected or a defective
clip that was delivered (now fixed)."""

from __future__ import annotations

import array
import io
import math
import random
from fractions import Fraction

from aiprod.adapters.output_checks import OutputChecker
from aiprod.domain.catalog import default_catalog
from support.live import render_task

W, H, FPS = 1280, 720, 24
VEO_AUDIO_MODEL = "veo-3.1-generate-001"  # promises sound (catalog: generate_audio)
_BAND = bytes(
    s for s in random.Random(1).choices(range(30, 221), k=W // 8 + 200) for _ in range(40)
)
_STILL = bytes(random.Random(3).choices(range(60, 200), k=W)) * H


def _moving(index: int) -> bytes:
    """Grey bands sliding sideways (as support.media's good clip)."""
    shift = (index * 6) % (len(_BAND) - W)
    return _BAND[shift : shift + W] * H


def _subject(index: int, size: int = 40) -> bytes:
    """A still background with a small bright subject crossing it (a bird over a lake)."""
    luma = bytearray(_STILL)
    x = 100 + index * 8
    for y in range(300, 300 + size):
        luma[y * W + x : y * W + x + size] = bytes([250]) * size
    return bytes(luma)


def _encode(luma, seconds=5.0, w=W, h=H, audio_amplitude=None, rotation=None) -> bytes:
    import av

    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = w, h, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "26", "g": "24", "keyint_min": "24"}
        if rotation is not None:
            video.set_display_rotation(rotation)
        sound = None if audio_amplitude is None else out.add_stream("aac", rate=48_000)
        chroma = bytes([128]) * ((w // 2) * (h // 2))
        for index in range(round(seconds * FPS)):
            frame = av.VideoFrame(w, h, "yuv420p")
            for plane, data, width in (
                (0, luma(index), w),
                (1, chroma, w // 2),
                (2, chroma, w // 2),
            ):
                _fill(frame.planes[plane], data, width)
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            _tone(out, sound, seconds, audio_amplitude)
    return buffer.getvalue()


def _fill(plane, data: bytes, width: int) -> None:
    if plane.line_size == width:
        plane.update(data)
        return
    pad = bytes(plane.line_size - width)
    rows = len(data) // width
    plane.update(b"".join(data[r * width : (r + 1) * width] + pad for r in range(rows)))


def _tone(out, stream, seconds: float, amplitude: float) -> None:
    import av

    samples = array.array(
        "f", (amplitude * math.sin(2 * math.pi * 375 * k / 48_000) for k in range(1024))
    ).tobytes()
    for start in range(0, int(seconds * 48_000), 1024):
        frame = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
        for plane in frame.planes:
            plane.update(samples)
        frame.sample_rate, frame.pts, frame.time_base = 48_000, start, Fraction(1, 48_000)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def _check(tmp_path, data: bytes, task):
    path = tmp_path / "output.mp4"
    path.write_bytes(data)
    return OutputChecker(default_catalog()).check_file(str(path), task)


def test_a_clip_frozen_after_its_first_second_is_rejected(tmp_path):
    report = _check(tmp_path, _encode(lambda i: _moving(min(i, FPS))), render_task("runway"))

    assert not report.passed and "not_frozen" in report.failed_checks


def test_a_still_shot_with_a_small_moving_subject_is_not_frozen(tmp_path):
    report = _check(tmp_path, _encode(_subject), render_task("runway"))

    assert report.passed, report.reason


def test_a_portrait_clip_stored_rotated_is_measured_as_displayed(tmp_path):
    data = _encode(lambda i: _moving(i), rotation=90)

    report = _check(tmp_path, data, render_task("runway", aspect_ratio="9:16"))

    assert report.passed, report.reason


def test_a_silent_track_where_sound_was_promised_is_rejected(tmp_path):
    task = render_task("veo").model_copy(update={"model": VEO_AUDIO_MODEL})
    data = _encode(lambda i: _moving(i), seconds=8.0, audio_amplitude=0.0)

    report = _check(tmp_path, data, task)

    assert not report.passed and "audio_level" in report.failed_checks
