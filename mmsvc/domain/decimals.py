"""Decimals as they leave the process: one form for every wire (issue 11, CONTRACTS.md)."""

from __future__ import annotations

from decimal import Decimal


def decimal_text(value: Decimal) -> str:
    """The one wire form of a decimal leaving the process (issue 11, CONTRACTS.md).

    Plain (never an exponent, so ``1E+2`` is ``100``), without trailing zeros, so
    the same number reads the same from PostgreSQL's NUMERIC (``1.50000000``),
    Redis (``1.5``) or the core (``1.50``). Dropping zeros keeps a price on its
    tick grid: the value is unchanged. A NaN or an infinity is a bug upstream,
    never a value to send: it raises.
    """
    if not value.is_finite():
        raise ValueError(f"not a finite decimal: {value}")
    text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in {"-0", ""} else text
