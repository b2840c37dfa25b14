"""Test videos made with PyAV: a good clip, and one of each defect output QA must catch.

The provider fakes serve these (``fakes.base``), so the live adapters keep and check real
files. A clip is an H.264 MP4 (AAC sound when asked) of moving vertical bands; each defect
changes one thing:

- ``black``: every frame video-black; ``frozen``: one picture throughout;
- ``short``: 40% of the asked length; ``long``: three times it (only its start is decoded);
- ``wrong_size``: half the width and height;
- ``no_audio``: no sound track although sound was asked for;
- ``corrupt``: the first half of a good clip's bytes (a download cut off);
- ``garbage``: not a video at all (an HTML error page).

Encoding costs a second or so for a 1080p clip, so each clip is made once per spec and kept
in memory and in a folder under the system's temporary directory (shared by the processes
of one test run; the name carries ``MEDIA_VERSION``).
"""

from __future__ import annotations

import array
import hashlib
import io
import math
import os
import random
import tempfile
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from functools import cache
from pathlib import Path

MEDIA_VERSION = 2
DEFECTS = ("black", "frozen", "short", "long", "wrong_size", "no_audio", "corrupt", "garbage")
SIZES = {  # (resolution, aspect ratio) → pixels
    ("480p", "16:9"): (832, 480),
    ("480p", "9:16"): (480, 832),
    ("720p", "16:9"): (1280, 720),
    ("720p", "9:16"): (720, 1280),
    ("720p", "1:1"): (960, 960),
    ("1080p", "16:9"): (1920, 1080),
    ("1080p", "9:16"): (1080, 1920),
}
BLOCK_PX = 40
AUDIO_RATE = 48_000
AUDIO_FRAME = 1024  # samples per AAC frame: 8 periods of a 375 Hz tone


@dataclass(frozen=True)
class ClipSpec:
    width: int = 1280
    height: int = 720
    duration_s: float = 5.0
    fps: int = 24
    audio: bool = False
    defect: str | None = None
    keyframe_every: int | None = 24  # frames; None: the encoder's default (one per 250)
    preset: str = "ultrafast"


def spec_for(
    resolution: str, aspect_ratio: str, duration_s: float, audio: bool = False, **more
) -> ClipSpec:
    width, height = SIZES[(resolution, aspect_ratio)]
    return ClipSpec(width=width, height=height, duration_s=duration_s, audio=audio, **more)


def clip_bytes(spec: ClipSpec) -> bytes:
    """The clip's bytes, made once per spec."""
    if spec.defect == "garbage":
        return b"<html><body>502 Bad Gateway</body></html>"
    if spec.defect == "corrupt":
        whole = clip_bytes(replace(spec, defect=None))
        return whole[: len(whole) // 2]
    return _cached(spec)


def clip_file(spec: ClipSpec, folder: Path) -> Path:
    path = folder / f"{_key(spec)}.mp4"
    path.write_bytes(clip_bytes(spec))
    return path


@cache
def _cached(spec: ClipSpec) -> bytes:
    folder = Path(tempfile.gettempdir()) / f"aiprod-test-media-v{MEDIA_VERSION}"
    folder.mkdir(exist_ok=True)
    path = folder / f"{_key(spec)}.mp4"
    if path.exists():
        return path.read_bytes()
    data = _encode(spec)
    partial = path.with_suffix(f".{os.getpid()}.part")
    partial.write_bytes(data)
    partial.replace(path)  # atomic: another process reads all of it or none
    return data


def _key(spec: ClipSpec) -> str:
    return hashlib.sha256(repr(sorted(asdict(spec).items())).encode()).hexdigest()[:16]


def _encode(spec: ClipSpec) -> bytes:
    import av

    width, height = spec.width, spec.height
    duration = spec.duration_s
    if spec.defect == "wrong_size":
        width, height = width // 2 // 2 * 2, height // 2 // 2 * 2
    if spec.defect == "short":
        duration *= 0.4
    if spec.defect == "long":
        duration *= 3
    frames = max(1, round(duration * spec.fps))
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as out:
        video = out.add_stream("libx264", rate=spec.fps)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        options = {"preset": spec.preset, "crf": "26"}
        if spec.keyframe_every:
            options.update(g=str(spec.keyframe_every), keyint_min=str(spec.keyframe_every))
        video.options = options
        sound = (
            out.add_stream("aac", rate=AUDIO_RATE)
            if spec.audio and spec.defect != "no_audio"
            else None
        )
        pictures = _Pictures(width, height, spec.defect)
        for index in range(frames):
            frame = pictures.frame(index)
            frame.pts = index
            frame.time_base = Fraction(1, spec.fps)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if sound is not None:
            _add_tone(out, sound, frames / spec.fps)
    return buffer.getvalue()


class _Pictures:
    """Frames of vertical grey bands (``BLOCK_PX`` wide) moving sideways: cheap to make and
    to encode."""

    def __init__(self, width: int, height: int, defect: str | None):
        import av

        self._av, self._width, self._height, self._defect = av, width, height, defect
        # blocks of random grey, never repeating: any two frames apart differ
        shades = random.Random(width * height).choices(range(30, 221), k=width // 8 + 200)
        band = bytes(shade for shade in shades for _ in range(BLOCK_PX))
        self._band, self._step = band, 6
        self._chroma = bytes([128]) * ((width // 2) * (height // 2))

    def frame(self, index: int):
        frame = self._av.VideoFrame(self._width, self._height, "yuv420p")
        if self._defect == "black":
            luma = bytes([16]) * (self._width * self._height)
        else:
            shift = (
                0
                if self._defect == "frozen"
                else (index * self._step) % (len(self._band) - self._width)
            )
            luma = self._band[shift : shift + self._width] * self._height
        _fill(frame.planes[0], luma, self._width)
        _fill(frame.planes[1], self._chroma, self._width // 2)
        _fill(frame.planes[2], self._chroma, self._width // 2)
        return frame


def _fill(plane, data: bytes, width: int) -> None:
    if plane.line_size == width:
        plane.update(data)
        return
    rows = len(data) // width
    padding = bytes(plane.line_size - width)
    plane.update(b"".join(data[r * width : (r + 1) * width] + padding for r in range(rows)))


def _add_tone(out, stream, seconds: float) -> None:
    import av

    tone = array.array(
        "f", (0.2 * math.sin(2 * math.pi * 375 * k / AUDIO_RATE) for k in range(AUDIO_FRAME))
    ).tobytes()
    for start in range(0, int(seconds * AUDIO_RATE), AUDIO_FRAME):
        frame = av.AudioFrame(format="fltp", layout="stereo", samples=AUDIO_FRAME)
        for plane in frame.planes:
            plane.update(tone)
        frame.sample_rate, frame.pts = AUDIO_RATE, start
        frame.time_base = Fraction(1, AUDIO_RATE)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))
