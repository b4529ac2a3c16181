"""Properties of the quoting formula over random books, configs, grids and positions."""

from __future__ import annotations

from dataclasses import replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

from hypothesis import given
from hypothesis import strategies as st

from mmsvc.domain.book import TopOfBook
from mmsvc.domain.model import Instrument, MMConfig, PriceSize, Quote, plain
from mmsvc.domain.quoting import ceil_to, compute_quote, floor_to
from tests.unit.domain.strategies import configs, instruments, multipliers, steps, tops

D = Decimal


Scenario = tuple[MMConfig, Instrument, TopOfBook, Decimal, Decimal]


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    cfg = draw(configs())
    inst = draw(instruments())
    book = draw(tops(inst.tick_size))
    limit = cfg.max_position_usdt
    position = draw(st.decimals(-2 * limit, 2 * limit, places=2))
    return cfg, inst, book, position, draw(multipliers())


def sides(quote: Quote) -> list[PriceSize]:
    return [s for lv in quote.levels for s in (lv.bid, lv.ask) if s is not None]


@given(scenarios())
def test_bid_is_below_ask_on_every_level(s: Scenario) -> None:
    quote = compute_quote(*s, now_ms=0)
    for lv in quote.levels:
        if lv.bid is not None and lv.ask is not None:
            assert lv.bid.price < lv.ask.price


@given(scenarios())
def test_every_price_is_on_the_tick_and_every_quantity_on_the_lot(s: Scenario) -> None:
    _, inst, _, _, _ = s
    for side in sides(compute_quote(*s, now_ms=0)):
        assert side.price % inst.tick_size == 0
        assert side.quantity % inst.lot_size == 0
        assert side.price > 0
        assert side.quantity >= inst.lot_size
        assert side.price * side.quantity >= inst.min_notional
        assert "E" not in str(side.price)
        assert "E" not in str(side.quantity)


@given(scenarios())
def test_quotes_never_go_through_the_opposite_best(s: Scenario) -> None:
    _, _, book, _, _ = s
    for lv in compute_quote(*s, now_ms=0).levels:
        assert lv.bid is None or lv.bid.price < book.best_ask
        assert lv.ask is None or lv.ask.price > book.best_bid


@given(scenarios())
def test_rounding_never_tightens_the_formula(s: Scenario) -> None:
    cfg, _, book, position, vol = s
    quote = compute_quote(*s, now_ms=0)
    mid = book.mid
    spread_bps = cfg.base_spread_bps * (vol if cfg.volatility_multiplier else 1)
    half = mid * spread_bps / 10_000 / 2
    norm = max(D(-1), min(D(1), position / cfg.max_position_usdt))
    bias = norm * cfg.inventory_skew_factor * half
    spacing = mid * cfg.level_spacing_bps / 10_000
    for lv in quote.levels:
        if lv.bid is not None:
            assert lv.bid.price <= mid - half - bias - lv.level * spacing
        if lv.ask is not None:
            assert lv.ask.price >= mid + half - bias + lv.level * spacing


@given(scenarios())
def test_long_inventory_never_raises_and_short_never_lowers_a_price(s: Scenario) -> None:
    cfg, inst, book, position, vol = s
    skewed = compute_quote(*s, now_ms=0)
    flat = compute_quote(cfg, inst, book, D(0), vol, 0)
    for lv, flat_lv in zip(skewed.levels, flat.levels, strict=True):
        for mine, neutral in ((lv.bid, flat_lv.bid), (lv.ask, flat_lv.ask)):
            if mine is None or neutral is None:
                continue
            if position > 0:
                assert mine.price <= neutral.price
            elif position < 0:
                assert mine.price >= neutral.price


@given(scenarios())
def test_every_level_is_quoted_when_the_order_size_allows_a_lot(s: Scenario) -> None:
    """D21: nothing is dropped when each order can hold one lot above min notional."""
    cfg, inst, book, position, vol = s
    # Spread <= 500 bps x 3, skew <= 5 and 4 levels of <= 100 bps keep every price
    # between 0.5 and 1.5 x mid, so this order size always buys a lot worth min notional.
    highest = book.best_ask * D("1.5") + inst.tick_size
    size = cfg.order_size_usdt + inst.min_notional + inst.lot_size * highest
    quote = compute_quote(replace(cfg, order_size_usdt=size), inst, book, position, vol, 0)
    assert len(quote.levels) == cfg.num_levels
    assert all(lv.bid is not None and lv.ask is not None for lv in quote.levels)


@given(st.decimals(D(-1_000_000), D(1_000_000), places=8), steps(-6, 2))
def test_rounding_helpers_agree_with_decimal_quantize(value: Decimal, step: Decimal) -> None:
    step = plain(step)  # as Instrument keeps its tick and lot
    down = (value / step).quantize(D(1), rounding=ROUND_FLOOR) * step
    up = (value / step).quantize(D(1), rounding=ROUND_CEILING) * step
    assert floor_to(value, step) == down
    assert ceil_to(value, step) == up
    assert floor_to(value, step) <= value <= ceil_to(value, step)
    for rounded in (floor_to(value, step), ceil_to(value, step)):
        assert "E" not in str(rounded)
        assert not (rounded == 0 and rounded.is_signed())  # never prints as -0
