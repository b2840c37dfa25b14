"""Output QA cost: CPU seconds and peak memory to check one 8 s 1080p clip.

A script, not a test: ``.venv/bin/python bench/qa.py``. It encodes the clip once with PyAV
(libx264 ``medium``, CRF 18, AAC sound, 24 fps) from bands of 8-pixel grey blocks, each
band moving at its own speed (about 1.3 Mb/s: decoding cost grows with the bitrate of a
clip with one keyframe; a noisy 23 Mb/s clip took about 4 s of CPU in order, see the note).
The encoder's default keyframe interval (250 frames) leaves one keyframe in 8 s, which
forces the probe's costlier path (decoding in order); ``--keyframe-every 24`` measures the
keyframe path.

The check runs in a fresh process (``python -I``), as a render function's first check would:
the figure includes importing PyAV, probing (two passes) and the rules, against the Veo 3.1
request it answers (8 s, 1080p, 16:9, with sound). ``qa_cpu_s`` is that process's user +
system CPU time from just before the import to the verdict; ``peak_rss_mb`` is its peak
resident memory (``VmHWM``: the whole process, interpreter included).

Targets (issue 14): qa_cpu_s <= 1.5 and peak_rss_mb <= 150. Exit status 1 when one is
missed. The one line printed is JSON:
{"clip": "8s 1080p", "qa_cpu_s", "peak_rss_mb", "passed", "decode", "bitrate_mbps", ...}.
"""

from __future__ import annotations

import argparse
import array
import json
import math
import random
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_CPU_S, TARGET_RSS_MB = 1.5, 150.0
WIDTH, HEIGHT, FPS, SECONDS = 1920, 1080, 24, 8
BANDS = range(HEIGHT // 8)
CRF = "18"

CHILD = """
import json, sys, time
from aiprod.domain.catalog import default_catalog
from aiprod.domain.messages import JobRequest, RenderTask
request = JobRequest(job_id="bench", prompt="a lighthouse in fog", duration_s=8,
                     resolution="1080p", aspect_ratio="16:9")
task = RenderTask(job_id="bench", attempt=1, backend="veo", model="veo-3.1-generate-001",
                  request=request, hold_micros=1)
from aiprod.adapters.output_checks import OutputChecker
checker = OutputChecker(default_catalog())
start = time.process_time()
report = checker.check_file(sys.argv[1], task)
cpu = time.process_time() - start
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across exec
status = dict(line.split(":", 1) for line in open("/proc/self/status"))
peak = int(status["VmHWM"].split()[0]) / 1024
print(json.dumps({"cpu": cpu, "peak": peak, "passed": report.passed, "reason": report.reason}))
"""


def encode(path: Path, keyframe_every: int | None) -> None:
    import av

    rng = random.Random(14)
    # 8-pixel blocks of random grey; each 8-row band moves at its own speed
    texture = bytes(v for _ in range((WIDTH + 4096) // 8) for v in [rng.randrange(24, 232)] * 8)
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        options = {"preset": "medium", "crf": CRF}
        if keyframe_every:
            options["g"] = str(keyframe_every)
        video.options = options
        sound = out.add_stream("aac", rate=48_000)
        chroma = bytes([120]) * (WIDTH // 2 * HEIGHT // 2)
        for index in range(FPS * SECONDS):
            frame = av.VideoFrame(WIDTH, HEIGHT, "yuv420p")
            rows = [texture[(y * 37 + index * (2 + y % 3)) % 4096 :][:WIDTH] for y in BANDS]
            frame.planes[0].update(_luma(rows, frame.planes[0].line_size))
            frame.planes[1].update(chroma)
            frame.planes[2].update(chroma)
            frame.pts, frame.time_base = index, Fraction(1, FPS)
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        _tone(av, out, sound)


def _luma(rows: list[bytes], line_size: int) -> bytes:
    """Each texture row eight times (8-pixel-tall bands), padded to the plane's line size."""
    pad = bytes(line_size - WIDTH)
    return b"".join((row + pad) * 8 for row in rows)


def _tone(av, out, stream) -> None:
    """A 375 Hz tone (the 8-second clip promises sound: Veo 3.1 renders with audio)."""
    tone = array.array(
        "f", (0.2 * math.sin(2 * math.pi * 375 * k / 48_000) for k in range(1024))
    ).tobytes()
    for start in range(0, SECONDS * 48_000, 1024):
        frame = av.AudioFrame(format="fltp", layout="stereo", samples=1024)
        for plane in frame.planes:
            plane.update(tone)
        frame.sample_rate, frame.pts, frame.time_base = 48_000, start, Fraction(1, 48_000)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def measure(path: Path, repeat: int) -> list[dict]:
    env_path = str(ROOT / "shared")
    runs = []
    for _ in range(repeat):
        done = subprocess.run(
            [sys.executable, "-c", f"import sys; sys.path.insert(0, {env_path!r})\n" + CHILD,
             str(path)],
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode:
            sys.exit(f"the check failed: {done.stderr[-2000:]}")
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5, help="fresh processes; the median")
    parser.add_argument("--keyframe-every", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        clip = Path(folder) / "clip.mp4"
        encode(clip, args.keyframe_every)
        runs = sorted(measure(clip, args.repeat), key=lambda run: run["cpu"])
        middle = runs[len(runs) // 2]
        size = clip.stat().st_size
    line = {
        "clip": f"{SECONDS}s {HEIGHT}p",
        "qa_cpu_s": round(middle["cpu"], 3),
        "peak_rss_mb": round(max(run["peak"] for run in runs), 1),
        "passed": middle["passed"],
        "failed_checks": middle["reason"],
        "decode": "keyframes" if args.keyframe_every else "in order (one keyframe)",
        "bitrate_mbps": round(size * 8 / SECONDS / 1e6, 2),
        "repeat": args.repeat,
        "targets": {"qa_cpu_s": TARGET_CPU_S, "peak_rss_mb": TARGET_RSS_MB},
    }
    print(json.dumps(line))
    met = line["qa_cpu_s"] <= TARGET_CPU_S and line["peak_rss_mb"] <= TARGET_RSS_MB
    return 0 if met and middle["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
