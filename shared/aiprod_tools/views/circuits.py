"""Circuit breakers for people and tools (``aiprod circuits``)."""

from __future__ import annotations

from dataclasses import asdict

from aiprod.domain.catalog import Catalog
from aiprod.domain.health import Circuit
from aiprod.domain.observed_quality import ObservedBook, blended, lookup
from aiprod_tools.views.listing import iso
from aiprod_tools.views.tables import render_table


def circuit_json(circuit: Circuit, now: float) -> dict:
    """The stored record, and whether a new attempt would be let through now."""
    return {**asdict(circuit), "state": circuit.state.value, "admits": circuit.admits(now)}


def circuits_table(circuits: list[Circuit], now: float) -> str:
    headers = ["circuit", "state", "admits", "failures", "trips", "open until", "last error"]
    rows = [
        [
            c.backend,
            c.state.value,
            "yes" if c.admits(now) else "no",
            c.consecutive_failures,
            c.trips,
            iso(c.open_until) if c.state.value != "closed" else None,
            c.last_error,
        ]
        for c in circuits
    ]
    return render_table(headers, rows)


def quality_rows(catalog: Catalog, observed: ObservedBook, now: float) -> list[dict]:
    """Each model's catalog quality, what its checked outputs measured, and the blend
    selection uses (``outputs``: the effective count left now)."""
    rows = []
    for backend in catalog.fallback_order:
        for model, spec in catalog.backends[backend].models.items():
            seen = lookup(observed, backend, model)
            rows.append(
                {
                    "backend": backend,
                    "model": model,
                    "catalog": spec.quality,
                    "measured": seen.mean if seen else None,
                    "outputs": round(seen.weight_at(now), 1) if seen else 0,
                    "blended": blended(spec.quality, seen, now),
                }
            )
    return rows


def quality_table(rows: list[dict]) -> str:
    headers = ["backend", "model", "catalog", "measured", "outputs", "blended"]
    return render_table(headers, [[row[h] for h in headers] for row in rows])


def override_text(record: dict) -> str:
    before, after = record["before"], record["after"]
    return (
        f"circuit {record['target']}: {before['state']} -> {after['state']}"
        f" by {record['operator']} (audit {record['audit_id']})"
    )
