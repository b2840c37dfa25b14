"""The report as one self-contained HTML page with inline SVG charts.

No plotting dependency: ``make run`` installs nothing but pydantic, and a page opens in any
browser. Two charts: every render's duration per backend (with its p50 and p95 marked), and
the cost per backend.
"""

from __future__ import annotations

from html import escape

from aiprod_tools.views.metrics import HEADERS, Summary, backend_rows, overview, percentile

WIDTH, LEFT, RIGHT, TOP, ROW = 760, 110, 110, 30, 48
COLORS = {"runway": "#7b4fd6", "veo": "#1a73e8", "replicate": "#e8710a"}


def render_html(summary: Summary, title: str = "aiprod report") -> str:
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(str('-' if c is None else c))}</td>" for c in row) + "</tr>"
        for row in backend_rows(summary)
    )
    head = "".join(f"<th>{h}</th>" for h in HEADERS)
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>"
        "<style>body{font:14px system-ui,sans-serif;margin:2em;color:#202124}"
        "table{border-collapse:collapse}td,th{padding:4px 12px;border-bottom:1px solid #ddd;"
        "text-align:right}td:first-child,th:first-child{text-align:left}"
        "h2{font-size:16px;margin-top:2em}</style></head><body>"
        f"<h1>{escape(title)}</h1><p>{escape(overview(summary))}</p>"
        f"<table><tr>{head}</tr>{rows}</table>"
        "<h2>Render duration per backend (each dot one render; bars p50 and p95)</h2>"
        f"{duration_chart(summary)}<h2>Provider cost per backend</h2>{cost_chart(summary)}"
        "</body></html>\n"
    )


def duration_chart(summary: Summary) -> str:
    backends = sorted(summary.backends.values(), key=lambda s: s.backend)
    top = max((max(s.durations, default=0) for s in backends), default=0) or 1.0
    scale = (WIDTH - LEFT - RIGHT) / top
    parts = _ticks(top, scale, len(backends))
    for i, stats in enumerate(backends):
        y = TOP + i * ROW
        color = COLORS.get(stats.backend, "#5f6368")
        parts.append(_label(stats.backend, y))
        for j, value in enumerate(stats.durations):
            jitter = (j * 7) % 15 - 7
            parts.append(
                f"<circle cx='{LEFT + value * scale:.1f}' cy='{y + jitter}' r='3' "
                f"fill='{color}' fill-opacity='0.45'/>"
            )
        for share, mark, text_y in ((0.5, "p50", y + 22), (0.95, "p95", y - 14)):
            value = percentile(stats.durations, share)
            if value is not None:
                x = LEFT + value * scale
                parts.append(
                    f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{y - 12}' y2='{y + 12}' "
                    f"stroke='#202124' stroke-width='2'/><text x='{x + 3:.1f}' y='{text_y}' "
                    f"font-size='10'>{mark} {value:.2f}s</text>"
                )
    return _svg(parts, len(backends), "seconds")


def cost_chart(summary: Summary) -> str:
    backends = sorted(summary.backends.values(), key=lambda s: s.backend)
    top = max((s.cost_usd for s in backends), default=0) or 1.0
    scale = (WIDTH - LEFT - RIGHT) / top
    parts = []
    for i, stats in enumerate(backends):
        y = TOP + i * ROW
        width = stats.cost_usd * scale
        color = COLORS.get(stats.backend, "#5f6368")
        parts += [
            _label(stats.backend, y),
            f"<rect x='{LEFT}' y='{y - 10}' width='{width:.1f}' height='20' fill='{color}'/>",
            f"<text x='{LEFT + width + 6:.1f}' y='{y + 4}'>${stats.cost_usd:,.2f}</text>",
        ]
    return _svg(parts, len(backends), "USD")


def _label(text: str, y: int) -> str:
    return f"<text x='{LEFT - 10}' y='{y + 4}' text-anchor='end'>{escape(text)}</text>"


def _ticks(top: float, scale: float, rows: int) -> list[str]:
    """Five vertical grid lines with their values, so dots can be read off the chart."""
    bottom = TOP + max(rows, 1) * ROW - 20
    parts = []
    for i in range(5):
        value = top * i / 4
        x = LEFT + value * scale
        parts.append(
            f"<line x1='{x:.1f}' x2='{x:.1f}' y1='{TOP - 20}' y2='{bottom}' stroke='#eee'/>"
            f"<text x='{x:.1f}' y='{bottom + 14}' text-anchor='middle' fill='#5f6368' "
            f"font-size='10'>{value:.1f}</text>"
        )
    return parts


def _svg(parts: list[str], rows: int, axis: str) -> str:
    height = TOP + max(rows, 1) * ROW
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height + 20}' "
        f"font-size='12' font-family='system-ui,sans-serif'>"
        f"<line x1='{LEFT}' x2='{LEFT}' y1='0' y2='{height}' stroke='#bbb'/>"
        + "".join(parts)
        + f"<text x='{LEFT}' y='{height + 14}' fill='#5f6368'>{escape(axis)}</text></svg>"
    )
