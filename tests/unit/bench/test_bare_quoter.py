"""The crosses benchmark's baseline quoter: its price rule is the service's, on the grid."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mmsvc.domain.quoting import compute_quote
from tests.bench._bare_quoter import Grid, first_storm_ms, order_quantity, quote_prices
from tests.unit.domain import builders

D = Decimal


@pytest.mark.parametrize(
    ("bid", "ask", "spread", "tick", "expected"),
    [
        # BTC-like: 0.25 bps of 65000 is 1.625, 8 ticks a side, rounded outward.
        ("64999.9", "65000.1", "0.25", "0.1", ("64999.1", "65000.9")),
        # A tick wider than half the spread: one tick out from the mid, at the touch.
        ("34.999", "35.001", "0.25", "0.001", ("34.999", "35.001")),
        # A mid on the half tick rounds outward on both sides.
        ("100.00", "100.01", "0.25", "0.01", ("100.00", "100.01")),
    ],
)
def test_prices_are_the_spread_around_the_mid_rounded_outward(
    bid: str, ask: str, spread: str, tick: str, expected: tuple[str, str]
) -> None:
    assert quote_prices(D(bid), D(ask), D(spread), D(tick)) == (D(expected[0]), D(expected[1]))


@pytest.mark.parametrize(
    ("bid", "ask", "tick"),
    [
        ("64999.9", "65000.1", "0.1"),
        ("3199.99", "3200.01", "0.01"),
        ("149.999", "150.001", "0.001"),
        ("579.99", "580.01", "0.01"),
        ("34.999", "35.001", "0.001"),
        ("64990.0", "65010.3", "0.1"),
    ],
)
def test_prices_match_the_services_quote_with_no_position(bid: str, ask: str, tick: str) -> None:
    config = builders.config(base_spread_bps=D("0.25"))
    instrument = builders.instrument(tick_size=D(tick), lot_size=D("0.0001"))
    quote = compute_quote(config, instrument, builders.top(bid, ask), D(0), D(1), 0)
    level = quote.levels[0]
    assert level.bid is not None
    assert level.ask is not None
    assert quote_prices(D(bid), D(ask), D("0.25"), D(tick)) == (level.bid.price, level.ask.price)


def test_quantity_is_the_notional_down_to_the_lot_or_none_below_the_minimum() -> None:
    grid = Grid(tick=D("0.1"), lot=D("0.0001"), min_notional=D(5))
    assert order_quantity(D("65000.0"), D(100), grid) == D("0.0015")
    assert order_quantity(D("65000.0"), D(4), grid) is None  # 0.0000 lots
    assert order_quantity(D("65000.0"), D("6.6"), grid) == D("0.0001")
    above_one_lot = Grid(tick=D("0.1"), lot=D("0.0001"), min_notional=D(7))
    assert order_quantity(D("65000.0"), D("6.6"), above_one_lot) is None  # 6.5 < 7
    assert order_quantity(D(0), D(100), grid) is None


def test_the_pre_d23_rule_fires_at_the_fifth_reject_within_a_minute() -> None:
    assert first_storm_ms([0, 10_000, 20_000, 30_000, 40_000], 5, 60_000) == 40_000
    # Spread over more than a minute: the window never holds five.
    assert first_storm_ms([0, 20_000, 40_000, 61_000, 81_000], 5, 60_000) is None
    later = [0, 20_000, 40_000, 61_000, 81_000, 90_000, 95_000]
    assert first_storm_ms(later, 5, 60_000) == 95_000
    assert first_storm_ms([], 5, 60_000) is None
