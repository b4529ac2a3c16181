"""The one wire form of a decimal (issue 11): plain, no trailing zeros, finite."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mmsvc.domain.decimals import decimal_text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("65000.10"), "65000.1"),
        (Decimal("1E+2"), "100"),
        (Decimal("1E-8"), "0.00000001"),
        (Decimal("1.50E-7"), "0.00000015"),
        (Decimal("0.0"), "0"),
        (Decimal("-0.00"), "0"),
        (Decimal("-2.500"), "-2.5"),
        (Decimal("1.50000000"), "1.5"),  # PostgreSQL's NUMERIC scale
    ],
)
def test_a_decimal_leaves_plain_and_without_trailing_zeros(value: Decimal, text: str) -> None:
    assert decimal_text(value) == text


def test_the_same_number_reads_the_same_whatever_its_scale() -> None:
    assert decimal_text(Decimal("1.5")) == decimal_text(Decimal("1.50000000"))


@pytest.mark.parametrize("value", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_a_non_finite_decimal_never_leaves(value: Decimal) -> None:
    with pytest.raises(ValueError, match="finite"):
        decimal_text(value)
