"""Money: integer micro-USD inside, decimal USD only at the edges. Pure, standard library.

The one place that turns USD text into micro-USD (settings, operator commands), a JSON number
into micro-USD (``max_cost_usd``), and micro-USD back into text (events, tables). Nothing here
goes through binary floating point: a float from JSON is read by its shortest decimal form.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Decimal, InvalidOperation

MICROS_PER_USD = 1_000_000


class MoneyFormatError(ValueError):
    """A USD amount that is not a finite, non-negative decimal of at most six places.

    The message is a predicate without the amount (``cannot be negative``): the caller names
    the subject, a setting's variable or an operator's argument."""


def parse_usd(text: str) -> int:
    """A decimal USD amount as integer micro-USD: finite, not negative, at most 6 places."""
    try:
        value = Decimal(str(text).strip())
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite():
        raise MoneyFormatError("is not a finite decimal amount of USD")
    if value < 0:
        raise MoneyFormatError("cannot be negative")
    micros = value * MICROS_PER_USD
    if micros != micros.to_integral_value():
        raise MoneyFormatError("has more precision than one micro-USD (6 decimal places)")
    return int(micros)


def cap_micros(amount_usd: float) -> int:
    """A USD cap from a JSON message (``max_cost_usd``) in whole micro-USD, read by the
    number's decimal form and rounded down: an integer hold fits the cap exactly when it fits
    this, so no hold above what the caller allowed is ever offered (``0.1299995`` is
    129 999, ``0.1`` is exactly 100 000; no binary float product in between)."""
    micros = Decimal(repr(float(amount_usd))) * MICROS_PER_USD
    return int(micros.to_integral_value(rounding=ROUND_FLOOR))


def usd(micros: int) -> str:
    """Micro-USD as an exact decimal string for machines: ``0.450000`` (event payloads)."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS_PER_USD)
    return f"{sign}{whole}.{frac:06d}"


def money(micros: int) -> str:
    """Micro-USD for a person: ``$0.60``, ``$0.045``, ``$12.00`` (exact, no float rounding)."""
    sign = "-" if micros < 0 else ""
    whole, frac = divmod(abs(micros), MICROS_PER_USD)
    digits = f"{frac:06d}".rstrip("0").ljust(2, "0")
    return f"{sign}${whole:,}.{digits}"


def as_usd(micros: int) -> float:
    """Micro-USD as a float of USD, for metric values only (never for arithmetic)."""
    return micros / MICROS_PER_USD
