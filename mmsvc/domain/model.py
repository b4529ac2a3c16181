"""Value types of the trading core: instruments, configs, quotes, orders, fills.

Every price, quantity and amount of money is a ``Decimal``; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import NamedTuple

# A symbol's config is defined once, in symbol_config (issue 11); re-exported for the core.
from mmsvc.domain.symbol_config import MMConfig as MMConfig  # noqa: PLC0414

ZERO = Decimal(0)
ONE = Decimal(1)
BPS = Decimal(10_000)


class Side(StrEnum):
    """The side of an order or fill, as spelled on the wire."""

    BUY = "BUY"
    SELL = "SELL"


class InstrumentKind(StrEnum):
    """What the instrument is; perpetuals are valued at their mark (ARCHITECTURE D5)."""

    SPOT = "SPOT"
    PERPETUAL = "PERPETUAL"


class InstrumentStatus(StrEnum):
    """Whether the exchange lets the instrument trade."""

    TRADING = "TRADING"
    HALTED = "HALTED"


class SymbolState(StrEnum):
    """The market maker's own state for one symbol."""

    ACTIVE = "ACTIVE"
    PAUSED = "PAUSED"
    HALTED = "HALTED"


class RiskTrigger(StrEnum):
    """Why a kill switch fired or quotes were pulled; the symbols of mm.risk.triggered.v1."""

    EXPOSURE = "EXPOSURE"
    LOSS = "LOSS"
    MARKET_HALT = "MARKET_HALT"
    KAFKA_LAG = "KAFKA_LAG"
    REJECT_STORM = "REJECT_STORM"
    RESPONSE_TIMEOUT = "RESPONSE_TIMEOUT"
    MANUAL = "MANUAL"
    STALE_DATA = "STALE_DATA"


class OrderStatus(StrEnum):
    """Where one of our orders is in its life."""

    PENDING = "PENDING"  # committed, request sent, not yet acknowledged (D10)
    NEW = "NEW"
    PARTIALLY_FILLED = "PARTIALLY_FILLED"
    PENDING_CANCEL = "PENDING_CANCEL"  # cancel sent, not yet confirmed
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    REJECTED = "REJECTED"
    EXPIRED = "EXPIRED"
    # A place whose request timed out: it may rest at the venue or never exist (D10, D31).
    UNKNOWN = "UNKNOWN"


# The one set of final statuses of the service (the database's records reuse it).
FINAL_STATUSES = frozenset(
    {OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED, OrderStatus.EXPIRED}
)
_OPEN = frozenset(OrderStatus) - FINAL_STATUSES
_RESTING = frozenset({OrderStatus.PENDING, OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED})
# engine.event.v1 event types that end an order's life; only these release its
# exposure (ARCHITECTURE D22, D31). A FILL ends it only with nothing remaining.
FINAL_EVENTS = frozenset({"CANCELED", "REJECTED", "EXPIRED"})


class Liquidity(StrEnum):
    """Whether a fill added liquidity (maker) or took it (taker)."""

    MAKER = "MAKER"
    TAKER = "TAKER"


def plain(value: Decimal) -> Decimal:
    """Return ``value`` with an exponent of at most zero, so ``str`` never shows one."""
    exponent = value.as_tuple().exponent
    return value.quantize(ONE) if isinstance(exponent, int) and exponent > 0 else value


@dataclass(frozen=True, slots=True)
class Instrument:
    """Exchange metadata of one symbol; tick, lot and min notional are positive."""

    symbol: str
    base_asset: str
    quote_asset: str
    kind: InstrumentKind
    tick_size: Decimal
    lot_size: Decimal
    min_notional: Decimal
    status: InstrumentStatus = InstrumentStatus.TRADING

    def __post_init__(self) -> None:
        if self.tick_size <= 0 or self.lot_size <= 0 or self.min_notional < 0:
            raise ValueError(f"{self.symbol}: tick and lot must be > 0, min_notional >= 0")
        # Prices are built as integer x tick: a tick such as 1E+1 would print as 6.5E+4.
        object.__setattr__(self, "tick_size", plain(self.tick_size))
        object.__setattr__(self, "lot_size", plain(self.lot_size))

    @property
    def halted(self) -> bool:
        """True while the exchange has halted trading in this symbol."""
        return self.status is InstrumentStatus.HALTED


@dataclass(frozen=True, slots=True)
class ServiceLimits:
    """The service-wide thresholds of the spec's environment, in milliseconds."""

    market_data_staleness_ms: int = 5_000
    kafka_lag_threshold_ms: int = 10_000
    reject_storm_count: int = 5
    reject_storm_window_ms: int = 60_000
    response_timeout_ms: int = 50
    max_orders_per_second: int = 10


@dataclass(frozen=True, slots=True)
class MarkPrice:
    """The last md.mark.v1 price of a perpetual and when it was stamped."""

    price: Decimal
    ts_ms: int


# PriceSize, QuoteLevel and NewOrder are built tens of times on every quote tick: as
# NamedTuples they are just as immutable and cost less than half a frozen dataclass.


class PriceSize(NamedTuple):
    """A price and a quantity, both on the instrument's grid."""

    price: Decimal
    quantity: Decimal


class QuoteLevel(NamedTuple):
    """One level of a quote; a side is None when the formula or a limit dropped it."""

    level: int
    bid: PriceSize | None
    ask: PriceSize | None


@dataclass(frozen=True, slots=True)
class Quote:
    """What the market maker wants resting in the book for one symbol."""

    symbol: str
    mid: Decimal
    spread_bps: Decimal
    inventory_usdt: Decimal
    levels: tuple[QuoteLevel, ...]
    ts_ms: int

    @property
    def is_empty(self) -> bool:
        """True when no level has a side left."""
        return all(lv.bid is None and lv.ask is None for lv in self.levels)


@dataclass(frozen=True, slots=True)
class Order:
    """One of our orders as the worker knows it; order_id is None until acknowledged."""

    client_order_id: str
    order_id: str | None
    side: Side
    price: Decimal
    quantity: Decimal
    filled: Decimal = ZERO
    status: OrderStatus = OrderStatus.NEW
    # D31: a DELETE answered 200 makes the order CANCELED, but only its engine event
    # releases its exposure (its fill may still be on Kafka).
    awaiting_final_event: bool = False
    # Read on every quote tick by the requote diff and the position limit: computed once.
    remaining: Decimal = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "remaining", self.quantity - self.filled)

    @property
    def is_open(self) -> bool:
        """True until its final engine event: it may still fill (ARCHITECTURE D5, D22, D31)."""
        return self.status in _OPEN or self.awaiting_final_event

    @property
    def is_resting(self) -> bool:
        """True for an open order no cancel has been sent for."""
        return self.status in _RESTING


class NewOrder(NamedTuple):
    """An order the worker should place; the runtime gives it a client_order_id (D10)."""

    side: Side
    price: Decimal
    quantity: Decimal
    level: int


@dataclass(frozen=True, slots=True)
class Fill:
    """One FILL of engine.event.v1 for our account; a negative fee is a rebate."""

    event_id: str
    side: Side
    price: Decimal
    quantity: Decimal
    fee: Decimal
    fee_asset: str | None
    liquidity: Liquidity | None
    ts_ms: int


@dataclass(frozen=True, slots=True)
class KillDecision:
    """A kill switch to fire: the trigger and a detail line for mm.risk.triggered.v1."""

    trigger: RiskTrigger
    detail: str
