"""Hand-written builders for domain values: sensible defaults, override what a test is about."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from mmsvc.domain.book import TopOfBook
from mmsvc.domain.model import (
    Fill,
    Instrument,
    InstrumentKind,
    InstrumentStatus,
    MMConfig,
    Order,
    OrderStatus,
    Side,
)

D = Decimal


def instrument(**overrides: Any) -> Instrument:
    """A spot instrument with tick 0.01, lot 0.001 and min notional 5 unless told."""
    fields: dict[str, Any] = {
        "symbol": "TESTUSDT",
        "base_asset": "TEST",
        "quote_asset": "USDT",
        "kind": InstrumentKind.SPOT,
        "tick_size": D("0.01"),
        "lot_size": D("0.001"),
        "min_notional": D("5"),
        "status": InstrumentStatus.TRADING,
    }
    fields.update(overrides)
    return Instrument(**fields)


def config(**overrides: Any) -> MMConfig:
    """A one-level config: 20 bps spread, 100 USDT orders, 10000 USDT limit, no vol widening."""
    fields: dict[str, Any] = {
        "symbol": "TESTUSDT",
        "base_spread_bps": D("20"),
        "order_size_usdt": D("100"),
        "inventory_skew_factor": D("0.5"),
        "max_position_usdt": D("10000"),
        "max_loss_usdt": D("500"),
        "volatility_multiplier": False,
        "num_levels": 1,
        "level_spacing_bps": D("10"),
        "price_threshold_bps": D("5"),
    }
    fields.update(overrides)
    return MMConfig(**fields)


def top(bid: str = "99.99", ask: str = "100.01", ts_ms: int = 1_000) -> TopOfBook:
    """A book whose mid is 100 unless told."""
    return TopOfBook(D(bid), D(ask), ts_ms)


_ids = iter(range(1, 10**9))


def order(
    side: Side,
    price: str | Decimal,
    quantity: str | Decimal,
    *,
    filled: str = "0",
    status: OrderStatus = OrderStatus.NEW,
) -> Order:
    """An acknowledged order of ours with a fresh client_order_id."""
    n = next(_ids)
    return Order(f"c{n}", f"o{n}", side, D(price), D(quantity), D(filled), status)


def fill(
    side: Side,
    price: str | Decimal,
    quantity: str | Decimal,
    *,
    fee: str | Decimal = "0",
    fee_asset: str | None = "USDT",
    event_id: str | None = None,
) -> Fill:
    """A maker fill of ours; a fresh event_id unless told."""
    return Fill(
        event_id or f"e{next(_ids)}", side, D(price), D(quantity), D(fee), fee_asset, None, 0
    )
