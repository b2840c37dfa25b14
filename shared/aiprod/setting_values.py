"""Reading one setting's text: numbers, choices, money, zones, JSON and the semantic-QA
settings, each refused with a ``ConfigError`` that names the variable (never its value).
``config`` builds the settings objects from these."""

from __future__ import annotations

import json
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from aiprod.domain.budget import Thresholds
from aiprod.domain.money import MoneyFormatError, parse_usd
from aiprod.domain.semantic_qa import SemanticQa, semantic_settings
from aiprod.exceptions import ConfigError


def usd_to_micros(text: str, name: str) -> int:
    """A USD setting as micro-USD, or a ConfigError naming the variable (not its value)."""
    try:
        return parse_usd(text)
    except MoneyFormatError as exc:
        raise ConfigError(f"{name} {exc}") from exc


def usd_or_none(get, name: str) -> int | None:
    return usd_to_micros(get(name), name) if get(name) else None


def time_zone(name: str) -> str:
    """An IANA zone the budget day can follow, checked at start-up: a bad name would
    otherwise fail every message that takes a hold."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"AIPROD_BUDGET_TIMEZONE {name!r} is not an IANA time zone") from exc
    return name


def budget_thresholds(warning: float, critical: float) -> Thresholds:
    if not 0 < warning <= critical <= 1:
        raise ConfigError(
            "AIPROD_BUDGET_WARNING and AIPROD_BUDGET_CRITICAL must satisfy "
            f"0 < warning <= critical <= 1 (got {warning} and {critical})"
        )
    return Thresholds(warning=warning, critical=critical)


def number(get, name: str, default: float | None) -> float | None:
    raw = get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ConfigError(f"{name} must be a number") from exc


def semantic_qa(get) -> SemanticQa:
    names = ("AIPROD_QA_SEMANTIC", "AIPROD_QA_SEMANTIC_MODEL", "AIPROD_QA_SEMANTIC_MIN")
    try:
        return semantic_settings(*(get(n) or "" for n in (*names, "AIPROD_QA_POLICY")))
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def choice(get, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = (get(name) or default).strip().lower()
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}")
    return value


def json_object(raw: str, name: str) -> dict:
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{name} must be a JSON object") from exc
    if not isinstance(value, dict):
        raise ConfigError(f"{name} must be a JSON object")
    return value
