"""Measuring a video file with PyAV (FFmpeg's libraries, bundled in its wheels): the only
module that imports ``av``, and only when an output is checked, so no function pays for it
at cold start.

Two passes, both bounded. The first demuxes without decoding (cheap: it reads the file once)
to learn the streams, the length and where the keyframes are. The second decodes only what
the black and frozen checks need: when the clip has a keyframe near each sample point, just
those keyframes (each decodes on its own); otherwise the frames in order, skipping those no
other frame refers to, until the last sample point. Frames are shrunk to a 64x36 grey
thumbnail at once, so at most one decoded picture is held. ``bench/qa.py`` measures the cost.
"""

from __future__ import annotations

import array
import logging
import os
from collections.abc import Iterable, Iterator
from fractions import Fraction

import av

from aiprod.domain.output_qa import SAMPLES, THUMB_SIZE, FrameSample, VideoFacts, luma_stats

log = logging.getLogger(__name__)
MAX_PACKETS = 50_000  # about 14 minutes at 60 fps: far past any clip we render
# Keyframe-only sampling needs a keyframe within this share of the clip of each sample point.
KEYFRAME_REACH = 0.5 / SAMPLES


def probe(path: str, decode_s: float = 60.0) -> VideoFacts:
    """What the file at ``path`` holds; a file that does not open or decode says why. Frames
    are sampled from the first ``decode_s`` seconds only: a clip far longer than asked fails
    its duration check anyway, and must not cost minutes of decoding to say so."""
    try:
        with av.open(path, metadata_errors="ignore") as container:
            return _measure(container, os.path.getsize(path), decode_s)
    except (av.FFmpegError, ValueError, OSError, IndexError, ZeroDivisionError) as exc:
        log.info("output did not decode: %s", type(exc).__name__)
        return VideoFacts(error=_why(exc), size_bytes=_size(path))
    except Exception as exc:  # a file the probe cannot read is not delivered unchecked
        log.exception("the probe failed on an output")
        return VideoFacts(error=f"the probe failed: {type(exc).__name__}", size_bytes=_size(path))


def _measure(container, size_bytes: int, decode_s: float) -> VideoFacts:
    if not container.streams.video:
        return VideoFacts(error="no video stream", size_bytes=size_bytes)
    video = container.streams.video[0]
    audio = container.streams.audio[0] if container.streams.audio else None
    packets, audio_s, audio_peak = _index(container, video, audio)
    if not packets:
        return VideoFacts(error="no video frames", size_bytes=size_bytes)
    start = min(pts for pts, _, _ in packets)
    end = max(pts + max(duration, 0) for pts, duration, _ in packets)
    base = video.time_base
    duration_s = float((end - start) * base)
    span = min(end - start, int(decode_s / base))
    targets = [start + int((i + 0.5) / SAMPLES * span) for i in range(SAMPLES)]
    keyframes = sorted(pts for pts, _, key in packets if key)
    chosen = _keyframes_near(keyframes, targets, span * KEYFRAME_REACH)
    container.seek(0, stream=video)
    if chosen:
        frames = _keyframes(container, video, set(chosen))
    else:
        frames = _in_order(container, video, targets)
    samples, rotation = _sampled(frames, start, base)
    width, height = _displayed(video, rotation)
    rate = (
        video.average_rate
        or video.guessed_rate
        or Fraction(len(packets), 1) / max(duration_s, 1e-6)
    )
    return VideoFacts(
        container=container.format.name.split(",")[0],
        codec=video.codec_context.name,
        width=width,
        height=height,
        fps=float(rate),
        duration_s=duration_s,
        audio_s=audio_s,
        audio_peak=audio_peak,
        samples=tuple(samples),
        size_bytes=size_bytes,
    )


def _index(container, video, audio) -> tuple[list[tuple[int, int, bool]], float, float]:
    """Video packets as (pts, duration, keyframe), undecoded; the seconds of audio, and its
    loudest sample (audio decodes for a fraction of video's cost)."""
    packets: list[tuple[int, int, bool]] = []
    audio_span: list[float] = []
    loudness = _Loudness()
    streams = [video] if audio is None else [video, audio]
    for packet in container.demux(*streams):
        pts = packet.pts if packet.pts is not None else packet.dts
        if pts is None:
            continue  # the flushing packet at the end of each stream
        if packet.stream.index == video.index:
            packets.append((pts, packet.duration or 0, packet.is_keyframe))
            if len(packets) >= MAX_PACKETS:
                break
        else:
            ends = pts + (packet.duration or 0)
            audio_span.append(float(pts * packet.time_base))
            audio_span.append(float(ends * packet.time_base))
            loudness.hear(audio.codec_context.decode(packet))
    audio_s = max(audio_span) - min(audio_span) if audio_span else 0.0
    return packets, audio_s, loudness.peak


def _keyframes_near(keyframes: list[int], targets: list[int], reach: float) -> list[int]:
    """For each sample point its nearest keyframe, if every point has one within reach and
    they are distinct; else [] (sample in decoding order)."""
    if len(keyframes) < SAMPLES:
        return []
    chosen = []
    for target in targets:
        nearest = min(keyframes, key=lambda pts: abs(pts - target))
        if abs(nearest - target) > reach:
            return []
        chosen.append(nearest)
    return chosen if len(set(chosen)) == len(chosen) else []


def _keyframes(container, video, chosen: set[int]) -> Iterator:
    """Only the chosen keyframes, each decoded on its own."""
    for packet in container.demux(video):
        pts = packet.pts if packet.pts is not None else packet.dts
        if pts not in chosen:
            continue
        yield from video.codec_context.decode(packet)
        chosen.discard(pts)
        if not chosen:
            break
    yield from video.codec_context.decode(None)  # what the decoder still holds


def _in_order(container, video, targets: list[int]) -> Iterator:
    """The first frame at or after each sample point, decoding in order."""
    video.codec_context.skip_frame = "NONREF"  # B-frames nobody refers to are not decoded
    pending = list(targets)
    for frame in container.decode(video):
        if frame.pts is None or frame.pts < pending[0]:
            continue
        yield frame
        while pending and pending[0] <= frame.pts:
            pending.pop(0)
        if not pending:
            break


def _sampled(frames: Iterable, start: int, time_base: Fraction) -> tuple[list[FrameSample], int]:
    """The samples, and the rotation the first frame is to be displayed with (degrees)."""
    samples: list[FrameSample] = []
    rotation = 0
    for frame in frames:
        if not samples:
            rotation = int(getattr(frame, "rotation", 0) or 0)
        samples.append(_sample(frame, start, time_base))
    return samples, rotation


def _displayed(video, rotation: int) -> tuple[int, int]:
    """The size as shown: non-square pixels stretched, a quarter turn swapping the sides."""
    width, height = video.codec_context.width, video.codec_context.height
    aspect = video.sample_aspect_ratio
    if aspect and aspect != 1:
        width = round(width * aspect)
    return (height, width) if abs(rotation) % 180 == 90 else (width, height)


class _Loudness:
    """The loudest sample of an audio stream, as 16-bit mono (0-1 of full scale)."""

    def __init__(self) -> None:
        self.peak = 0.0
        self._resampler = av.AudioResampler(format="s16", layout="mono")

    def hear(self, frames: list) -> None:
        for frame in frames:
            for mono in self._resampler.resample(frame):
                samples = array.array("h", bytes(mono.planes[0])[: mono.samples * 2])
                if samples:
                    loudest = max(max(samples), -min(samples))
                    self.peak = max(self.peak, loudest / 32768)


def _sample(frame, start: int, time_base: Fraction) -> FrameSample:
    width, height = THUMB_SIZE
    grey = frame.reformat(width=width, height=height, format="gray")
    plane = grey.planes[0]
    raw = bytes(plane)
    if plane.line_size != width:  # rows padded for alignment
        rows = (raw[r * plane.line_size :][:width] for r in range(height))
        raw = b"".join(rows)
    mean, spread = luma_stats(raw)
    at_s = float((frame.pts - start) * time_base) if frame.pts is not None else 0.0
    return FrameSample(at_s=round(at_s, 3), luma_mean=mean, luma_spread=spread, thumb=raw)


def _why(exc: Exception) -> str:
    """FFmpeg's reason, without the file path it quotes."""
    reason = getattr(exc, "strerror", None) or type(exc).__name__
    return str(reason)[:200]


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0
