"""Circuit breakers for people and tools (``aiprod circuits``)."""

from __future__ import annotations

from dataclasses import asdict

from aiprod.domain.health import Circuit
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


def override_text(record: dict) -> str:
    before, after = record["before"], record["after"]
    return (
        f"circuit {record['target']}: {before['state']} -> {after['state']}"
        f" by {record['operator']} (audit {record['audit_id']})"
    )
