"""Hypothesis strategies for books, grids, configs and positions."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from mmsvc.domain.book import TopOfBook
from mmsvc.domain.model import Instrument, InstrumentKind, MMConfig

D = Decimal


@st.composite
def steps(draw: st.DrawFn, low_exp: int = -6, high_exp: int = 1) -> Decimal:
    """A grid step such as 0.0001, 0.05, 0.5, 2 or 10."""
    mantissa = draw(st.sampled_from([1, 2, 5]))
    return D(mantissa).scaleb(draw(st.integers(low_exp, high_exp)))


def bps(low: str, high: str) -> st.SearchStrategy[Decimal]:
    """Basis points with up to two decimals."""
    return st.decimals(D(low), D(high), places=2)


@st.composite
def instruments(draw: st.DrawFn) -> Instrument:
    """Any tick, lot and min notional the exchange might list."""
    return Instrument(
        symbol="PROPUSDT",
        base_asset="PROP",
        quote_asset="USDT",
        kind=draw(st.sampled_from(list(InstrumentKind))),
        tick_size=draw(steps(-6, 1)),
        lot_size=draw(steps(-6, 0)),
        min_notional=draw(st.decimals(D(0), D(20), places=2)),
    )


@st.composite
def tops(draw: st.DrawFn, tick: Decimal) -> TopOfBook:
    """A known, uncrossed book on the tick grid: 100 ticks to about a million USDT."""
    bid_ticks = draw(st.integers(100, max(101, int(D(1_000_000) / tick))))
    spread_ticks = draw(st.integers(1, 200))
    best_bid = bid_ticks * tick
    return TopOfBook(best_bid, best_bid + spread_ticks * tick, 1_000)


@st.composite
def configs(draw: st.DrawFn) -> MMConfig:
    """Any config the admin API would accept, within sane trading ranges."""
    return MMConfig(
        symbol="PROPUSDT",
        base_spread_bps=draw(bps("0.1", "500")),
        order_size_usdt=draw(st.decimals(D(1), D(20_000), places=2)),
        inventory_skew_factor=draw(st.decimals(D(0), D(1), places=2)),
        max_position_usdt=draw(st.decimals(D(100), D(1_000_000), places=2)),
        max_loss_usdt=draw(st.decimals(D("0.01"), D(100_000), places=2)),
        volatility_multiplier=draw(st.booleans()),
        num_levels=draw(st.integers(1, 5)),
        level_spacing_bps=draw(bps("0.01", "100")),
        price_threshold_bps=draw(bps("0", "20")),
    )


def multipliers() -> st.SearchStrategy[Decimal]:
    """Volatility multipliers as the estimator emits them (it clamps to [1, 3])."""
    return st.decimals(D(1), D(3), places=4)
