"""The spec's quoting formula, on the instrument's tick and lot grid (spec, Quoting Algorithm).

    spread   = mid x base_spread_bps / 10000 (x the volatility multiplier)
    inv_norm = clamp(position_usdt / max_position_usdt, -1, 1)
    bias     = inv_norm x inventory_skew_factor x spread / 2
    bid      = mid - spread / 2 - bias - level x spacing
    ask      = mid + spread / 2 - bias + level x spacing

ARCHITECTURE D13: the formula wins over the prose, and the bias uses the
widened spread.
"""

from __future__ import annotations

from decimal import Decimal

from mmsvc.domain.book import TopOfBook
from mmsvc.domain.model import (
    BPS,
    ONE,
    ZERO,
    Instrument,
    MMConfig,
    PriceSize,
    Quote,
    QuoteLevel,
)

_TWO = Decimal(2)
_MINUS_ONE = Decimal(-1)


def floor_to(value: Decimal, step: Decimal) -> Decimal:
    """The largest multiple of step at or below value; no exponent when step has none."""
    # `//` truncates toward zero, exactly, and costs a fifth of quantize(rounding=...).
    units = value // step
    if value < ZERO and units * step != value:
        units -= ONE
    return (units or ZERO) * step


def ceil_to(value: Decimal, step: Decimal) -> Decimal:
    """The smallest multiple of step at or above value; no exponent when step has none."""
    units = value // step
    if value > ZERO and units * step != value:
        units += ONE
    return (units or ZERO) * step


def inventory_norm(position_usdt: Decimal, max_position_usdt: Decimal) -> Decimal:
    """clamp(position_usdt / max_position_usdt, -1, 1)."""
    norm = position_usdt / max_position_usdt
    if norm > ONE:
        return ONE
    if norm < _MINUS_ONE:
        return _MINUS_ONE
    return norm


def effective_spread_bps(config: MMConfig, vol_multiplier: Decimal) -> Decimal:
    """base_spread_bps, widened (never narrowed) by the multiplier when the config asks."""
    if config.volatility_multiplier and vol_multiplier > ONE:
        return config.base_spread_bps * vol_multiplier
    return config.base_spread_bps


def compute_quote(
    config: MMConfig,
    instrument: Instrument,
    top: TopOfBook,
    position_usdt: Decimal,
    vol_multiplier: Decimal,
    now_ms: int,
) -> Quote:
    """Quote every level: tick-aligned, bid < ask, never through the opposite best."""
    mid = top.mid
    spread_bps = effective_spread_bps(config, vol_multiplier)
    half = mid * spread_bps / BPS / _TWO
    bias = inventory_norm(position_usdt, config.max_position_usdt) * config.inventory_skew_factor
    bias *= half
    spacing = mid * config.level_spacing_bps / BPS
    bid0, ask0 = mid - half - bias, mid + half - bias
    levels = tuple(
        _level(level, bid0 - level * spacing, ask0 + level * spacing, config, instrument, top)
        for level in range(config.num_levels)
    )
    return Quote(instrument.symbol, mid, spread_bps, position_usdt, levels, now_ms)


def _level(
    level: int,
    raw_bid: Decimal,
    raw_ask: Decimal,
    config: MMConfig,
    instrument: Instrument,
    top: TopOfBook,
) -> QuoteLevel:
    tick = instrument.tick_size
    # Bids round down and asks up: rounding only ever widens the quote.
    bid = floor_to(raw_bid, tick)
    ask = ceil_to(raw_ask, tick)
    if bid >= ask:  # only reachable through Decimal precision on absurd inputs
        ask = bid + tick
    # POST_ONLY orders must never take: stay one tick inside the opposite best.
    if bid >= top.best_ask:
        bid = floor_to(top.best_ask - tick, tick)
    if ask <= top.best_bid:
        ask = ceil_to(top.best_bid + tick, tick)
    size = config.order_size_usdt
    return QuoteLevel(level, _sized(bid, size, instrument), _sized(ask, size, instrument))


def _sized(price: Decimal, order_size_usdt: Decimal, instrument: Instrument) -> PriceSize | None:
    """order_size_usdt / price down to the lot; None below one lot or min_notional."""
    if price <= ZERO:
        return None
    lot = instrument.lot_size
    quantity = order_size_usdt / price // lot * lot  # both positive: // is the floor
    if quantity <= ZERO or quantity * price < instrument.min_notional:
        return None
    return PriceSize(price, quantity)
