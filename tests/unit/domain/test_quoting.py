"""The spec's Quoting Algorithm, section by section, with numbers worked by hand.

Unless a test says otherwise: book 99.99 / 100.01 so mid = 100, tick 0.01,
lot 0.001, min notional 5, base_spread_bps 20 so spread = 100 x 20 / 10000 = 0.2
and spread / 2 = 0.1, skew factor 0.5, max position 10000 USDT, orders of 100 USDT.
"""

from __future__ import annotations

from decimal import Decimal

from mmsvc.domain.model import MMConfig, PriceSize, Quote, QuoteLevel
from mmsvc.domain.quoting import ceil_to, compute_quote, floor_to, inventory_norm
from tests.unit.domain.builders import D, config, instrument, top

NO_VOL = D(1)


def bid(quote: Quote) -> PriceSize:
    """Level 0's bid, which the case expects to be quoted."""
    side = quote.levels[0].bid
    assert side is not None
    return side


def ask(quote: Quote) -> PriceSize:
    """Level 0's ask, which the case expects to be quoted."""
    side = quote.levels[0].ask
    assert side is not None
    return side


def quote_prices(position_usdt: str = "0", **cfg: object) -> list[tuple[Decimal, Decimal]]:
    q = compute_quote(config(**cfg), instrument(), top(), D(position_usdt), NO_VOL, 0)
    return [(lv.bid.price, lv.ask.price) for lv in q.levels if lv.bid and lv.ask]


def test_flat_inventory_quotes_half_the_spread_either_side_of_mid() -> None:
    # bias = 0: bid = 100 - 0.1 = 99.90, ask = 100 + 0.1 = 100.10
    assert quote_prices("0") == [(D("99.90"), D("100.10"))]


def test_long_inventory_lowers_both_bid_and_ask() -> None:
    # inv_norm = 5000 / 10000 = 0.5; bias = 0.5 x 0.5 x 0.1 = 0.025
    # bid = 100 - 0.1 - 0.025 = 99.875 -> down to 99.87; ask = 100.075 -> up to 100.08
    assert quote_prices("5000") == [(D("99.87"), D("100.08"))]
    (flat_bid, flat_ask) = quote_prices("0")[0]
    (bid, ask) = quote_prices("5000")[0]
    assert bid < flat_bid
    assert ask < flat_ask


def test_short_inventory_raises_both_bid_and_ask() -> None:
    # inv_norm = -0.5; bias = -0.025
    # bid = 100 - 0.1 + 0.025 = 99.925 -> down to 99.92; ask = 100.125 -> up to 100.13
    assert quote_prices("-5000") == [(D("99.92"), D("100.13"))]
    (flat_bid, flat_ask) = quote_prices("0")[0]
    (bid, ask) = quote_prices("-5000")[0]
    assert bid > flat_bid
    assert ask > flat_ask


def test_inventory_beyond_the_limit_skews_no_further_than_the_limit() -> None:
    # inv_norm = clamp(20000 / 10000) = 1; bias = 1 x 0.5 x 0.1 = 0.05
    assert quote_prices("20000") == quote_prices("10000") == [(D("99.85"), D("100.05"))]
    assert inventory_norm(D("-30000"), D("10000")) == D(-1)


def test_each_level_adds_the_spacing() -> None:
    # spacing = 100 x 10 / 10000 = 0.1 per level, on both sides
    assert quote_prices("0", num_levels=3, level_spacing_bps=D("10")) == [
        (D("99.90"), D("100.10")),
        (D("99.80"), D("100.20")),
        (D("99.70"), D("100.30")),
    ]


def test_levels_keep_the_inventory_bias() -> None:
    # bias 0.025 (long 5000) shifts every level down: level 1 bid = 99.875 - 0.1 = 99.775
    assert quote_prices("5000", num_levels=2) == [
        (D("99.87"), D("100.08")),
        (D("99.77"), D("100.18")),
    ]


def test_volatility_multiplier_widens_the_spread_and_the_bias_uses_the_widened_spread() -> None:
    # multiplier 2: spread 0.4, half 0.2; long 5000: bias = 0.5 x 0.5 x 0.2 = 0.05 (D13)
    # bid = 100 - 0.2 - 0.05 = 99.75; ask = 100 + 0.2 - 0.05 = 100.15
    q = compute_quote(config(volatility_multiplier=True), instrument(), top(), D(5000), D(2), 0)
    assert (q.levels[0].bid, q.levels[0].ask) == (
        PriceSize(D("99.75"), D("1.002")),  # 100 / 99.75 = 1.00250.. -> 1.002
        PriceSize(D("100.15"), D("0.998")),  # 100 / 100.15 = 0.99850.. -> 0.998
    )
    assert q.spread_bps == D(40)


def test_volatility_multiplier_never_narrows_and_is_ignored_when_disabled() -> None:
    on = config(volatility_multiplier=True)
    calm = compute_quote(on, instrument(), top(), D(0), D("0.5"), 0)
    off = compute_quote(config(volatility_multiplier=False), instrument(), top(), D(0), D(3), 0)
    assert bid(calm).price == bid(off).price == D("99.90")


def test_quantity_is_order_size_over_price_rounded_down_to_the_lot() -> None:
    q = compute_quote(config(), instrument(), top(), D(0), NO_VOL, 0)
    # 100 / 99.90 = 1.001001.. -> 1.001; 100 / 100.10 = 0.999000.. -> 0.999
    assert q.levels[0] == QuoteLevel(
        0, PriceSize(D("99.90"), D("1.001")), PriceSize(D("100.10"), D("0.999"))
    )


def test_side_below_one_lot_is_dropped() -> None:
    # lot 2: 100 / 99.90 = 1.001 rounds down to 0 lots on both sides
    q = compute_quote(config(), instrument(lot_size=D(2)), top(), D(0), NO_VOL, 0)
    assert q.levels[0] == QuoteLevel(0, None, None)
    assert q.is_empty


def test_side_below_min_notional_is_dropped_but_the_other_side_stays() -> None:
    # lot 1, min notional 100, orders of 150 USDT: 150 / 99.90 = 1.50.. -> 1 lot,
    # 1 x 99.90 < 100 so the bid is dropped; 150 / 100.10 -> 1 lot, 100.10 >= 100 stays.
    q = compute_quote(
        config(order_size_usdt=D(150)),
        instrument(lot_size=D(1), min_notional=D(100)),
        top(),
        D(0),
        NO_VOL,
        0,
    )
    assert q.levels[0] == QuoteLevel(0, None, PriceSize(D("100.10"), D(1)))


def test_bid_rounds_down_and_ask_rounds_up_to_a_half_tick_grid() -> None:
    # book 65000.0 / 65000.5: mid 65000.25; spread = 65000.25 x 10 / 10000 = 65.00025
    # bid = 65000.25 - 32.500125 = 64967.749875 -> 64967.5; ask = 65032.750125 -> 65033.0
    q = compute_quote(
        config(base_spread_bps=D(10), order_size_usdt=D(1000)),
        instrument(tick_size=D("0.5"), lot_size=D("0.0001")),
        top("65000.0", "65000.5"),
        D(0),
        NO_VOL,
        0,
    )
    assert str(bid(q).price) == "64967.5"
    assert str(ask(q).price) == "65033.0"
    # 1000 / 64967.5 = 0.015392.. -> 0.0153
    assert str(bid(q).quantity) == "0.0153"


def test_prices_on_a_tick_of_ten_print_without_an_exponent() -> None:
    q = compute_quote(
        config(order_size_usdt=D(100000)),
        instrument(tick_size=D("1E+1"), lot_size=D("0.01")),
        top("65000", "65010"),
        D(0),
        NO_VOL,
        0,
    )
    # mid 65005; spread 130.01, half 65.005: bid 64939.995 -> 64930; ask 65070.005 -> 65080
    assert (str(bid(q).price), str(ask(q).price)) == ("64930", "65080")


def skew_past_the_bound(skew: Decimal) -> MMConfig:
    """A config with a skew the model refuses (> 1): the crossing guard is defence in depth."""
    cfg = config()
    object.__setattr__(cfg, "inventory_skew_factor", skew)
    return cfg


def test_bid_that_would_cross_the_best_ask_moves_one_tick_below_it() -> None:
    # skew 4, short 10000: bias = -1 x 4 x 0.1 = -0.4; bid = 100 - 0.1 + 0.4 = 100.3
    # >= best ask 100.01, so it becomes 100.00; ask = 100.1 + 0.4 = 100.50
    q = compute_quote(skew_past_the_bound(D(4)), instrument(), top(), D(-10000), NO_VOL, 0)
    assert (bid(q).price, ask(q).price) == (D("100.00"), D("100.50"))


def test_ask_that_would_cross_the_best_bid_moves_one_tick_above_it() -> None:
    # long 10000 with skew 4: ask = 100 + 0.1 - 0.4 = 99.70 <= best bid 99.99 -> 100.00
    q = compute_quote(skew_past_the_bound(D(4)), instrument(), top(), D(10000), NO_VOL, 0)
    assert (bid(q).price, ask(q).price) == (D("99.50"), D("100.00"))


def test_quote_reports_mid_spread_and_inventory() -> None:
    q = compute_quote(config(), instrument(), top(), D("-1234.5"), NO_VOL, 77)
    assert (q.mid, q.spread_bps, q.inventory_usdt, q.ts_ms) == (
        D(100),
        D(20),
        D("-1234.5"),
        77,
    )


def test_rounding_helpers_land_on_any_tick_grid() -> None:
    assert floor_to(D("1.23456"), D("0.0001")) == D("1.2345")
    assert ceil_to(D("1.23451"), D("0.0001")) == D("1.2346")
    assert floor_to(D("7.49"), D("2.5")) == D("5.0")
    assert ceil_to(D("7.51"), D("2.5")) == D("10.0")
    assert floor_to(D("-0.01"), D("0.5")) == D("-0.5")
    assert str(floor_to(D("130000"), D("0.5"))) == "130000.0"
