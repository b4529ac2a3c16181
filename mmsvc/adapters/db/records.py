"""The values the repositories take and return: frozen, Decimal for money, no ORM objects.

Rows never leave a repository as mapped objects, so a caller cannot lazy-load
or mutate one behind the session's back; what crosses the boundary is a value.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic.dataclasses import dataclass as pydantic_dataclass

from mmsvc.adapters.wire import Timestamp

# One vocabulary for the whole service: the trading core's enums are the ones stored.
from mmsvc.domain import model as _model
from mmsvc.domain.model import Liquidity, RiskTrigger, Side, SymbolState

# A symbol's config is defined once, in the domain (issue 11).
from mmsvc.domain.symbol_config import CONFIG_FIELDS, STRICT, ConfigFields, MMConfig

__all__ = [  # re-exported: callers import the stored vocabulary from here
    "CONFIG_FIELDS",
    "ConfigFields",
    "Liquidity",
    "RiskTrigger",
    "Side",
    "SymbolState",
]
# STALE_DATA pulls quotes and halts nothing (ARCHITECTURE D7), so it is never
# the trigger a HALTED symbol carries.
KILL_TRIGGERS = frozenset(RiskTrigger) - {RiskTrigger.STALE_DATA}

# Only these halt every symbol at once and set the global flag (ARCHITECTURE D7).
GLOBAL_KILL_TRIGGERS = frozenset({RiskTrigger.KAFKA_LAG, RiskTrigger.MANUAL})


class OrderStatus(StrEnum):
    """An order's status as mmsvc tracks it (PENDING: committed before the request, D10)."""

    PENDING = "PENDING"
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    UNKNOWN = "UNKNOWN"


# The core's one set of final statuses (domain/model.py), in the stored vocabulary.
FINAL_STATUSES = frozenset(OrderStatus(s.value) for s in _model.FINAL_STATUSES)
# UNKNOWN counts as open: a timed-out request may have left a live order (D10),
# and the worst-case position check must assume it can fill (D5).
OPEN_STATUSES = frozenset(OrderStatus) - FINAL_STATUSES


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=STRICT)
class ConfigRecord(MMConfig):
    """One row of mm_configs: the config (validated as the model says) and who wrote it last.

    Also the admin API's Config body: its JSON is this record's (``Timestamp``
    writes the times as the API always has).
    """

    created_at: Timestamp
    updated_at: Timestamp
    updated_by: str


@dataclass(frozen=True, slots=True)
class StateRecord:
    """One row of mm_states: a symbol's state and, while HALTED, its trigger."""

    symbol: str
    state: SymbolState
    trigger: RiskTrigger | None
    trigger_detail: str | None
    reason: str
    actor: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class StateChange:
    """The outcome of setting a state; `previous` is None for a new symbol."""

    previous: SymbolState | None
    current: StateRecord

    @property
    def changed(self) -> bool:
        """True when the state really changed (only then is mm.state.changed.v1 due)."""
        return self.previous != self.current.state


@dataclass(frozen=True, slots=True)
class KillFlag:
    """The global kill flag (ARCHITECTURE D3, D7)."""

    active: bool
    trigger: RiskTrigger | None
    reason: str
    actor: str
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class PositionRecord:
    """One symbol's position and P&L; quantity is signed (negative: short)."""

    symbol: str
    quantity: Decimal
    avg_entry_price: Decimal
    realized_pnl: Decimal
    fees_paid: Decimal
    updated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class NewOrder:
    """An order about to be sent: the row written PENDING before the request (D10)."""

    client_order_id: UUID
    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal
    level: int
    # D32: the writer's lease epoch; None for a row written under no lease.
    epoch: int | None = None


@dataclass(frozen=True, slots=True)
class OrderRecord:
    """One row of mm_orders."""

    client_order_id: UUID
    order_id: str | None
    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal
    filled_quantity: Decimal
    status: OrderStatus
    level: int
    reject_reason: str | None
    created_at: datetime
    updated_at: datetime
    awaiting_final_event: bool = True
    epoch: int | None = None

    @property
    def is_open(self) -> bool:
        """True while the order may still rest on the book (UNKNOWN included)."""
        return self.status in OPEN_STATUSES

    @property
    def is_settled(self) -> bool:
        """True once final and its final engine event has come (D31): no exposure left."""
        return self.status in FINAL_STATUSES and not self.awaiting_final_event


@dataclass(frozen=True, slots=True)
class OrderUpdate:
    """The outcome of applying an event to an order: its status before and its row after."""

    previous: OrderStatus
    order: OrderRecord

    @property
    def changed(self) -> bool:
        """True when the status moved (a reject counts once per client_order_id: D10)."""
        return self.previous != self.order.status


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution of our order, from an engine.event.v1 FILL."""

    event_id: str
    symbol: str
    order_id: str
    client_order_id: str
    side: Side
    price: Decimal
    quantity: Decimal
    fee: Decimal
    fee_asset: str | None
    liquidity: Liquidity | None
    ts_ms: int


@dataclass(frozen=True, slots=True)
class OutboxMessage:
    """One unsent (or sent) outbox row: the Avro record as a JSON dict."""

    id: int
    topic: str
    key: str | None
    payload: dict[str, Any]
    created_at: datetime
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of mm_audit."""

    id: int
    ts: datetime
    actor: str
    action: str
    symbol: str | None
    detail: dict[str, Any]
