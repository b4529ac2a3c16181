"""The config model's bounds (issue 11): what it refuses, what it accepts, what it documents."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any, cast

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from mmsvc.domain.symbol_config import (
    CONFIG_FIELDS,
    ConfigFields,
    MMConfig,
    bounds,
    decimal_pattern,
    field_values,
    is_decimal,
)

D = Decimal
DECIMALS = [name for name in CONFIG_FIELDS if is_decimal(name)]

# spec: Per-Symbol Configuration (Database), column "Default"; milliseconds as integers.
SPEC_DEFAULTS = {
    "enabled": False,
    "base_spread_bps": D("10.0"),
    "order_size_usdt": D("100.0"),
    "inventory_skew_factor": D("0.5"),
    "max_position_usdt": D("10000.0"),
    "max_loss_usdt": D("500.0"),
    "volatility_multiplier": True,
    "num_levels": 1,
    "level_spacing_bps": D("5.0"),
    "check_staleness": False,
    "staleness_threshold_ms": 1000,
    "quote_interval_ms": 100,
    "price_threshold_bps": D("5.0"),
}


def refused_field(**values: Any) -> str:
    with pytest.raises(ValidationError) as refused:
        MMConfig(symbol="BTCUSDT", **values)
    return str(refused.value.errors()[0]["loc"][0])


def test_the_defaults_are_the_specs_and_within_their_bounds() -> None:
    defaults = field_values(MMConfig(symbol="BTCUSDT"))
    assert {name: defaults[name] for name in SPEC_DEFAULTS} == SPEC_DEFAULTS
    given = field_values(MMConfig(symbol="BTCUSDT", **cast(dict[str, Any], SPEC_DEFAULTS)))
    assert {name: given[name] for name in SPEC_DEFAULTS} == SPEC_DEFAULTS


# The values: each one the database held and the core refused, or worse.
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("base_spread_bps", D(0)),
        ("base_spread_bps", "0"),
        ("staleness_threshold_ms", D("0.5")),
        ("staleness_threshold_ms", 0),
        ("order_size_usdt", D("1E+40")),
        ("max_position_usdt", D("1E+300")),
        ("num_levels", 21),
        ("num_levels", 0),
        ("quote_interval_ms", 5),
        ("order_size_usdt", D("1.11111111111111111111111111111111111111")),
        ("order_size_usdt", "1.11111111111111111111111111111111111111"),
        ("max_loss_usdt", "NaN"),
        ("max_loss_usdt", "Infinity"),
        ("max_loss_usdt", D("NaN")),
        ("max_loss_usdt", D("Infinity")),
        ("max_loss_usdt", D(0)),
        ("inventory_skew_factor", D("1.01")),
        ("level_spacing_bps", D(0)),
        ("price_threshold_bps", D("10000.0001")),
        ("order_size_usdt", D("1E-341")),
        ("order_size_usdt", 0.5),  # a float: binary rounding never reaches money
        ("enabled", 1),
        ("num_levels", True),
        ("num_levels", "2"),
    ],
)
def test_a_value_outside_its_bounds_or_type_is_refused_naming_the_field(
    field: str, value: Any
) -> None:
    assert refused_field(**{field: value}) == field


def test_an_unknown_field_is_refused() -> None:
    assert refused_field(max_leverage=5) == "max_leverage"


def test_a_whole_json_number_is_an_integer_field() -> None:
    config = ConfigFields(
        **cast(dict[str, Any], {"num_levels": D("5.0"), "quote_interval_ms": D(100)})
    )
    assert (config.num_levels, config.quote_interval_ms) == (5, 100)
    assert type(config.quote_interval_ms) is int


def within(name: str, value: Decimal) -> bool:
    found = bounds(name)
    assert found is not None
    assert found.low is not None
    assert found.high is not None
    low_ok = value >= found.low if found.low_inclusive else value > found.low
    high_ok = value <= found.high if found.high_inclusive else value < found.high
    return low_ok and high_ok


@given(
    name=st.sampled_from(DECIMALS),
    value=st.decimals(D(-1), D(10) ** 13, allow_nan=False, allow_infinity=False, places=8),
)
def test_a_decimal_is_accepted_exactly_when_within_its_bounds(name: str, value: Decimal) -> None:
    try:
        ConfigFields(**cast(dict[str, Any], {name: value}))
    except ValidationError:
        accepted = False
    else:
        accepted = True
    assert accepted == within(name, value)


plain_decimals = st.from_regex(r"[0-9]{1,14}(\.[0-9]{1,20})?", fullmatch=True)


@given(name=st.sampled_from(DECIMALS), text=plain_decimals)
def test_the_documented_string_pattern_is_exactly_what_is_accepted(name: str, text: str) -> None:
    # The OpenAPI document promises this pattern (schemathesis holds the API to it).
    found = bounds(name)
    assert found is not None
    documented = re.fullmatch(decimal_pattern(found), text) is not None
    try:
        ConfigFields(**cast(dict[str, Any], {name: text}))
    except ValidationError:
        accepted = False
    else:
        accepted = True
    assert documented == accepted, (name, text)


@given(value=st.floats(min_value=0, max_value=1e12, exclude_min=True))
def test_any_json_number_a_float_client_sends_is_judged_by_its_bounds_alone(value: float) -> None:
    # The admin parses JSON numbers straight into Decimal from their text (parse_float).
    number = Decimal(repr(value))
    ConfigFields(order_size_usdt=number, max_position_usdt=D(10) ** 12)
