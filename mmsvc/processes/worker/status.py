"""The live status a worker writes to Redis for the admin API and operators."""

from __future__ import annotations

import os
from typing import Any

from mmsvc.adapters.kafka.events import now_ms
from mmsvc.domain.decimals import decimal_text
from mmsvc.domain.model import FINAL_STATUSES, PriceSize, Quote
from mmsvc.domain.trader import SymbolTrader


def _side(side: PriceSize | None) -> dict[str, str] | None:
    if side is None:
        return None
    return {"price": decimal_text(side.price), "size": decimal_text(side.quantity)}


def quote_view(quote: Quote | None) -> dict[str, Any] | None:
    """The last quote as decimal strings."""
    if quote is None:
        return None
    return {
        "mid": decimal_text(quote.mid),
        "spread_bps": decimal_text(quote.spread_bps),
        "inventory_usdt": decimal_text(quote.inventory_usdt),
        "ts_ms": quote.ts_ms,
        "levels": [
            {"level": lv.level, "bid": _side(lv.bid), "ask": _side(lv.ask)} for lv in quote.levels
        ],
    }


def live_status(trader: SymbolTrader, *, shadow: bool) -> dict[str, Any]:
    """State, position, P&L, orders, last quote and data age, as JSON values."""
    now = now_ms()
    valuation = trader.valuation(now)
    inventory = trader.inventory
    zero = "0"
    realized = decimal_text(inventory.realized_pnl) if inventory is not None else zero
    position_usdt, total = trader.position_and_pnl(now)
    # Orders that may rest at the venue; a CANCELED one awaiting its event is not one.
    orders = [o for o in trader.orders.values() if o.status not in FINAL_STATUSES]
    unrealized = (
        decimal_text(inventory.unrealized_pnl(valuation))
        if inventory is not None and valuation is not None
        else zero
    )
    age = trader.book.age_ms(now)
    return {
        "symbol": trader.symbol,
        "state": trader.state.value,
        "triggers": [t.value for t in trader.triggers],
        "shadow": shadow,
        "instrument_known": trader.instrument is not None,
        "instrument_status": None if trader.instrument is None else trader.instrument.status.value,
        "position": decimal_text(inventory.quantity) if inventory is not None else zero,
        "position_usdt": zero if position_usdt is None else decimal_text(position_usdt),
        "realized_pnl_usdt": realized,
        "unrealized_pnl_usdt": unrealized,
        "total_pnl_usdt": zero if total is None else decimal_text(total),
        "valuation_price": None if valuation is None else decimal_text(valuation),
        "open_orders": len(orders),
        "orders": [
            {
                "client_order_id": o.client_order_id,
                "order_id": o.order_id,
                "side": o.side.value,
                "price": decimal_text(o.price),
                "quantity": decimal_text(o.quantity),
                "filled": decimal_text(o.filled),
                "status": o.status.value,
            }
            for o in orders
        ],
        "last_quote": quote_view(trader.last_quote),
        "book_known": trader.book.is_known,
        "data_age_ms": age,
        "pid": os.getpid(),
        "heartbeat_ms": now,
    }
