"""``aiprod report`` and the JSON-lines sink behind it (the demo's and the emulator stack's)."""

from __future__ import annotations

import io
import threading

import pytest

from aiprod.adapters.local_metrics import JsonLinesSink, read_points
from aiprod.domain import metric_set as m
from aiprod.domain.messages import ErrorClass, RenderOutcome
from aiprod.services.telemetry import Telemetry
from aiprod_tools.cli import main
from aiprod_tools.views.metrics import HEADERS, backend_rows, percentile, summarize
from aiprod_tools.views.report import run_report


def render(backend: str, seconds: float, ok: bool = True, cost: int = 0) -> RenderOutcome:
    return RenderOutcome(
        job_id="j",
        attempt=1,
        backend=backend,
        model="m",
        succeeded=ok,
        error_class=None if ok else ErrorClass.FALLBACK,
        cost_micros=cost,
        started_at=100.0,
        finished_at=100.0 + seconds,
    )


def write_sample(path) -> None:
    """Two processes' worth of points: veo rendered 4 times (one failure), runway once."""
    sinks = [JsonLinesSink(path, job="render_veo"), JsonLinesSink(path, job="render_runway")]
    veo, runway = (Telemetry(s) for s in sinks)
    for seconds in (1.0, 2.0, 3.0):
        veo.render_finished(render("veo", seconds))
        veo.attempt_settled(render("veo", seconds, cost=400_000), hold_micros=400_000)
    veo.render_finished(render("veo", 9.0, ok=False))
    runway.render_finished(render("runway", 0.5, ok=False))
    runway.fallback("runway", "veo")
    for sink in sinks:
        sink.flush()


def test_report_summarizes_per_backend_with_exact_percentiles(tmp_path):
    path = tmp_path / "metrics.jsonl"
    write_sample(path)

    summary = summarize(read_points(path))

    veo, runway = summary.backends["veo"], summary.backends["runway"]
    assert (veo.renders, veo.failed, veo.success_rate) == (4, 1, 0.75)
    assert veo.cost_usd == pytest.approx(1.2)
    assert percentile(veo.durations, 0.5) == 2.0 and percentile(veo.durations, 0.95) == 9.0
    assert (runway.renders, runway.fallbacks, runway.success_rate) == (1, 1, 0.0)


def test_report_prints_the_table_and_writes_the_chart_page(tmp_path):
    path, html = tmp_path / "metrics.jsonl", tmp_path / "report.html"
    write_sample(path)
    out = io.StringIO()

    assert run_report(path, html, out) == 0

    text = out.getvalue()
    assert "backend" in text and "runway" in text and "veo" in text
    assert "75%" in text and "$1.20" in text
    page = html.read_text()
    assert page.count("<svg") == 2 and "p95 9.00s" in page


def test_cli_report_without_metrics_says_how_to_get_some(tmp_path, capsys):
    code = main(["report", "--metrics", str(tmp_path / "none.jsonl"), "--no-html"])
    assert code == 1
    assert "aiprod demo" in capsys.readouterr().out


def test_concurrent_flushes_never_tear_a_line(tmp_path):
    # GIVEN eight "processes" appending to one file at once
    path = tmp_path / "metrics.jsonl"
    sinks = [JsonLinesSink(path, job=f"f{i}") for i in range(8)]

    def work(sink: JsonLinesSink) -> None:
        for _ in range(50):
            for _ in range(20):
                sink.count(m.JOBS_ACCEPTED, {"backend": "veo"})
            sink.flush()

    threads = [threading.Thread(target=work, args=(s,)) for s in sinks]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    # THEN every line is whole
    lines = path.read_text().splitlines()
    assert len(lines) == len(read_points(path)) == 8 * 50 * 20


def test_report_shows_how_many_jobs_waited_for_a_slot_and_the_p95_wait(tmp_path):
    # GIVEN three veo jobs that waited for a render slot, and a runway render that did not
    path = tmp_path / "metrics.jsonl"
    sink = JsonLinesSink(path, job="handle_outcome")
    for seconds in (1.0, 2.0, 30.0):
        sink.observe(m.QUEUE_WAIT, seconds, {"backend": "veo"})
    Telemetry(sink).render_finished(render("runway", 0.5))
    sink.flush()
    out = io.StringIO()

    # WHEN the report is printed
    assert run_report(path, None, out) == 0

    # THEN veo's row says 3 queued with a p95 wait of 30 s; runway's that none waited
    rows = {
        r[0]: dict(zip(HEADERS, r, strict=True)) for r in backend_rows(summarize(read_points(path)))
    }
    assert (rows["veo"]["queued"], rows["veo"]["wait p95"]) == (3, "30.00s")
    assert (rows["runway"]["queued"], rows["runway"]["wait p95"]) == (0, None)
    lines = out.getvalue().splitlines()
    header = next(line for line in lines if line.startswith("backend"))
    assert "queued" in header and "wait p95" in header
    veo = next(line for line in lines if line.startswith("veo"))
    assert veo.split()[6:8] == ["3", "30.00s"]
