"""Budget amounts from the environment: exact micro-USD or a clear refusal."""

from __future__ import annotations

import pytest

from aiprod.config import Settings, usd_to_micros
from aiprod.exceptions import ConfigError


@pytest.mark.parametrize(
    ("text", "micros"), [("100", 100_000_000), ("0.25", 250_000), ("0.000001", 1), ("0", 0)]
)
def test_usd_amounts_become_exact_micros(text, micros):
    assert usd_to_micros(text, "AIPROD_DAILY_BUDGET_USD") == micros


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("NaN", "finite"),
        ("Infinity", "finite"),
        ("-1", "negative"),
        ("0.0000001", "precision"),
        ("ten", "decimal amount"),
    ],
)
def test_unusable_amounts_are_refused_naming_the_variable(text, says):
    with pytest.raises(ConfigError, match=says) as refused:
        usd_to_micros(text, "AIPROD_DAILY_BUDGET_USD")
    assert "AIPROD_DAILY_BUDGET_USD" in str(refused.value)


def test_tenant_budgets_in_json_are_read_exactly():
    settings = Settings.from_env({"AIPROD_TENANT_BUDGETS_USD": '{"acme": 2.5, "beta": "1"}'})
    assert dict(settings.tenant_limits) == {"acme": 2_500_000, "beta": 1_000_000}


def test_the_budget_day_follows_a_configured_zone():
    assert Settings.from_env({"AIPROD_BUDGET_TIMEZONE": "Europe/Paris"}).timezone == "Europe/Paris"


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../etc/passwd"])
def test_an_unknown_zone_is_refused_at_start_up(zone):
    with pytest.raises(ConfigError, match="AIPROD_BUDGET_TIMEZONE"):
        Settings.from_env({"AIPROD_BUDGET_TIMEZONE": zone})


@pytest.mark.parametrize(("warning", "critical"), [("0.95", "0.9"), ("0", "0.9"), ("0.7", "1.5")])
def test_thresholds_out_of_order_are_refused(warning, critical):
    env = {"AIPROD_BUDGET_WARNING": warning, "AIPROD_BUDGET_CRITICAL": critical}
    with pytest.raises(ConfigError, match="0 < warning <= critical <= 1"):
        Settings.from_env(env)
