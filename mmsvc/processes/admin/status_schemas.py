"""The JSON Schemas of the status responses: symbol states, live status, positions, orders."""

from __future__ import annotations

from typing import Any

from mmsvc.processes.admin.json_schema import (
    DECIMAL,
    STATE_ENUM,
    TIMESTAMP,
    TRIGGER_ENUM,
    closed,
    nullable,
    ref,
)


def _symbol_state() -> dict[str, Any]:
    properties = {
        "symbol": {"type": "string"},
        "enabled": {"type": "boolean"},
        "state": STATE_ENUM,
        "trigger": nullable(TRIGGER_ENUM),
        "trigger_detail": nullable({"type": "string"}),
        "reason": {"type": "string"},
        "actor": {"type": "string"},
        "updated_at": TIMESTAMP,
    }
    return closed(properties, list(properties))


def _quote() -> dict[str, Any]:
    side = nullable(closed({"price": DECIMAL, "size": DECIMAL}, ["price", "size"]))
    level = closed(
        {"level": {"type": "integer"}, "bid": side, "ask": side}, ["level", "bid", "ask"]
    )
    return closed(
        {
            "mid": DECIMAL,
            "spread_bps": DECIMAL,
            "inventory_usdt": nullable(DECIMAL),
            "ts_ms": {"type": "integer"},
            "levels": {"type": "array", "items": level},
        },
        ["mid", "spread_bps", "ts_ms", "levels"],
    )


LIVE_DECIMALS = (
    "position",
    "position_usdt",
    "realized_pnl_usdt",
    "unrealized_pnl_usdt",
    "total_pnl_usdt",
    "valuation_price",
)


def _live() -> dict[str, Any]:
    properties: dict[str, Any] = {name: nullable(DECIMAL) for name in LIVE_DECIMALS}
    properties.update(
        {
            "heartbeat_age_s": {"type": "number"},
            "state": nullable(STATE_ENUM),
            "triggers": {"type": "array", "items": {"type": "string"}},
            "open_orders": nullable({"type": "integer"}),
            "book_known": nullable({"type": "boolean"}),
            "data_age_ms": nullable({"type": "integer"}),
            "instrument_known": nullable({"type": "boolean"}),
            "instrument_status": nullable({"type": "string"}),
            "shadow": nullable({"type": "boolean"}),
            "last_quote": nullable(ref("Quote")),
        }
    )
    return closed(properties, sorted(properties))


def _symbol_summary() -> dict[str, Any]:
    properties = {
        "symbol": {"type": "string"},
        "enabled": {"type": "boolean"},
        "state": nullable(STATE_ENUM),
        "trigger": nullable(TRIGGER_ENUM),
        "live": nullable({"type": "boolean"}),  # null: Redis did not answer (D25)
        "position_usdt": nullable(DECIMAL),
        "total_pnl_usdt": nullable(DECIMAL),
        "open_orders": nullable({"type": "integer"}),
        "data_age_ms": nullable({"type": "integer"}),
        "heartbeat_age_s": nullable({"type": "number"}),
        "owner": nullable({"type": "string"}),  # D28: host/pid of the live lease, null: moving
        "epoch": nullable({"type": "integer"}),
    }
    return closed(properties, sorted(properties))


def _kill_switch() -> dict[str, Any]:
    properties = {
        "active": {"type": "boolean"},
        "trigger": nullable(TRIGGER_ENUM),
        "reason": {"type": "string"},
        "actor": {"type": "string"},
        "updated_at": nullable(TIMESTAMP),
        "redis_copy_active": nullable({"type": "boolean"}),  # null: Redis did not answer
    }
    return closed(properties, sorted(properties))


def _totals() -> dict[str, Any]:
    counts = ("symbols", "active", "paused", "halted", "open_orders")
    properties: dict[str, Any] = {name: {"type": "integer"} for name in counts}
    properties["live"] = nullable({"type": "integer"})  # null: Redis did not answer (D25)
    properties.update({"position_usdt": DECIMAL, "total_pnl_usdt": DECIMAL})
    return closed(properties, sorted(properties))


def _overall_status() -> dict[str, Any]:
    properties = {
        "kill_switch": ref("KillSwitch"),
        "shadow_mode": {"type": "boolean"},
        "auth_disabled": {"type": "boolean"},
        "symbols": {"type": "array", "items": ref("SymbolSummary")},
        "totals": ref("Totals"),
        "supervisor_heartbeat_age_s": nullable({"type": "number"}),
    }
    return closed(properties, sorted(properties))


def _position() -> dict[str, Any]:
    properties = {
        "quantity": DECIMAL,
        "avg_entry_price": DECIMAL,
        "realized_pnl_usdt": DECIMAL,
        "fees_paid_usdt": DECIMAL,
        "updated_at": nullable(TIMESTAMP),
    }
    return closed(properties, sorted(properties))


def _order() -> dict[str, Any]:
    properties = {
        "client_order_id": {"type": "string", "format": "uuid"},
        "order_id": nullable({"type": "string"}),
        "side": {"type": "string", "enum": ["BUY", "SELL"]},
        "price": DECIMAL,
        "quantity": DECIMAL,
        "filled_quantity": DECIMAL,
        "status": {"type": "string"},
        "level": {"type": "integer"},
        "created_at": TIMESTAMP,
    }
    return closed(properties, sorted(properties))


def _symbol_status() -> dict[str, Any]:
    properties = {
        "symbol": {"type": "string"},
        "config": ref("Config"),
        "state": nullable(ref("SymbolState")),
        "position": nullable(ref("Position")),
        "open_orders": {"type": "array", "items": ref("Order")},
        "live": nullable(ref("LiveStatus")),
        "kill_switch_active": {"type": "boolean"},
    }
    return closed(properties, sorted(properties))


def status_components() -> dict[str, dict[str, Any]]:
    """The component schemas of the status responses, by name, in document order."""
    return {
        "SymbolState": _symbol_state(),
        "Quote": _quote(),
        "LiveStatus": _live(),
        "SymbolSummary": _symbol_summary(),
        "KillSwitch": _kill_switch(),
        "Totals": _totals(),
        "OverallStatus": _overall_status(),
        "Position": _position(),
        "Order": _order(),
        "SymbolStatus": _symbol_status(),
    }
