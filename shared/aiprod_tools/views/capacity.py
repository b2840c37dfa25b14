"""Capacity rows as a table for people and as JSON for tools."""

from __future__ import annotations

from aiprod.services.capacity_admin import CapacityRow
from aiprod_tools.views.tables import render_table

HEADERS = ("backend", "at a time", "creates/min", "default", "ceiling", "platform", "source")


def capacity_table(rows: list[CapacityRow]) -> str:
    return render_table(
        HEADERS,
        [
            (
                r.backend,
                r.concurrent,
                r.creates_per_minute,
                r.default.concurrent,
                r.default.max_concurrent,
                r.platform,
                r.source,
            )
            for r in rows
        ],
    )


def capacity_json(rows: list[CapacityRow]) -> list[dict]:
    return [
        {
            "backend": r.backend,
            "concurrent": r.concurrent,
            "creates_per_minute": r.creates_per_minute,
            "default": r.default.concurrent,
            "max_concurrent": r.default.max_concurrent,
            "platform": r.platform,
            "source": r.source,
        }
        for r in rows
    ]
