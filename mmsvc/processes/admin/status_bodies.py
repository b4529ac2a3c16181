"""The status responses' bodies: symbol states, live status, positions, orders (issue 11).

Each is a model the views build (:mod:`views`) and the OpenAPI document
describes (:mod:`schemas`); the field order is the order of the JSON.
"""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from mmsvc.adapters.db.records import ConfigRecord, OrderStatus, Side
from mmsvc.adapters.wire import DecimalText, Timestamp
from mmsvc.processes.admin.bodies import Body, StateName, TriggerName, enum_of


class SymbolState(Body):
    """A symbol's stored state, as a control command leaves it."""

    symbol: str
    enabled: bool
    state: StateName
    trigger: TriggerName | None
    trigger_detail: str | None
    reason: str
    actor: str
    updated_at: Timestamp


class QuoteSide(Body):
    """One side of a quoted level."""

    price: DecimalText
    size: DecimalText


class QuoteLevel(Body):
    """One level of the last quote; a side is null when not quoted."""

    level: int
    bid: QuoteSide | None
    ask: QuoteSide | None


class Quote(Body):
    """The last quote a worker computed."""

    mid: DecimalText
    spread_bps: DecimalText
    inventory_usdt: DecimalText | None
    ts_ms: int
    levels: list[QuoteLevel]


class LiveStatus(Body):
    """What a worker last wrote to Redis, re-checked: anything malformed reads null."""

    position: DecimalText | None
    position_usdt: DecimalText | None
    realized_pnl_usdt: DecimalText | None
    unrealized_pnl_usdt: DecimalText | None
    total_pnl_usdt: DecimalText | None
    valuation_price: DecimalText | None
    heartbeat_age_s: float
    state: StateName | None
    triggers: list[str]
    open_orders: int | None
    book_known: bool | None
    data_age_ms: int | None
    instrument_known: bool | None
    instrument_status: str | None
    shadow: bool | None
    last_quote: Quote | None


LIVE_DECIMALS = tuple(
    name for name, info in LiveStatus.model_fields.items() if info.annotation == DecimalText | None
)
"""The live status's decimals, read from Redis by the same names."""


class SymbolSummary(Body):
    """One line of the overall status."""

    owner: str | None  # D28: host/pid of the live lease; null: between owners
    epoch: int | None
    symbol: str
    enabled: bool
    state: StateName | None
    trigger: TriggerName | None
    live: bool | None  # null: Redis did not answer (D25)
    position_usdt: DecimalText | None
    total_pnl_usdt: DecimalText | None
    open_orders: int | None
    data_age_ms: int | None
    heartbeat_age_s: float | None


class KillSwitch(Body):
    """PostgreSQL's kill flag (the authority, D3) and whether Redis holds its copy."""

    active: bool
    trigger: TriggerName | None
    reason: str
    actor: str
    updated_at: Timestamp | None
    redis_copy_active: bool | None  # null: Redis did not answer (D25)


class Totals(Body):
    """Counts by state and sums of what the live statuses say."""

    symbols: int
    active: int
    paused: int
    halted: int
    live: int | None  # null: Redis did not answer (D25)
    open_orders: int
    position_usdt: DecimalText
    total_pnl_usdt: DecimalText


class OverallStatus(Body):
    """GET /v1/mm/status."""

    kill_switch: KillSwitch
    shadow_mode: bool
    auth_disabled: bool
    symbols: list[SymbolSummary]
    totals: Totals
    supervisor_heartbeat_age_s: float | None


class Position(Body):
    """A stored position: quantity signed, negative when short."""

    quantity: DecimalText
    avg_entry_price: DecimalText
    realized_pnl_usdt: DecimalText
    fees_paid_usdt: DecimalText
    updated_at: Timestamp | None


class Order(Body):
    """An open order as stored."""

    client_order_id: UUID
    order_id: str | None
    side: Annotated[Side, enum_of(Side)]
    price: DecimalText
    quantity: DecimalText
    filled_quantity: DecimalText
    status: Annotated[OrderStatus, enum_of(OrderStatus)]
    level: int
    created_at: Timestamp


class SymbolStatus(Body):
    """GET /v1/mm-configs/{symbol}/status."""

    symbol: str
    config: ConfigRecord
    state: SymbolState | None
    position: Position | None
    open_orders: list[Order]
    live: LiveStatus | None
    kill_switch_active: bool


STATUS_BODIES: dict[str, type] = {
    "SymbolState": SymbolState,
    "QuoteSide": QuoteSide,
    "QuoteLevel": QuoteLevel,
    "Quote": Quote,
    "LiveStatus": LiveStatus,
    "SymbolSummary": SymbolSummary,
    "KillSwitch": KillSwitch,
    "Totals": Totals,
    "OverallStatus": OverallStatus,
    "Position": Position,
    "Order": Order,
    "SymbolStatus": SymbolStatus,
}
"""The component schemas of the status responses, by name, in document order."""
