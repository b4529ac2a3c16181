"""One symbol's trading state, fed with decoded messages, asked for decisions. No I/O.

The worker process owns one :class:`SymbolTrader`. It turns the decoded Avro
records of CONTRACTS.md into the core's values (Decimal from the wire on) and
keeps what the core needs to decide: book, mark, volatility, inventory, our
open orders, the symbol's state and its active kill-switch triggers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from mmsvc.domain.book import BookChange, BookSide, OrderBook
from mmsvc.domain.engine import MarketInputs, QuoteDecision, decide
from mmsvc.domain.holds import PlaceHolds
from mmsvc.domain.inventory import Inventory, valuation_price
from mmsvc.domain.killswitch import RejectStorm, StaleEpisodes
from mmsvc.domain.model import (
    FINAL_STATUSES,
    Fill,
    Instrument,
    InstrumentKind,
    InstrumentStatus,
    Liquidity,
    MarkPrice,
    MMConfig,
    NewOrder,
    Order,
    OrderStatus,
    Quote,
    RiskTrigger,
    ServiceLimits,
    Side,
    SymbolState,
)
from mmsvc.domain.risk import stale_reason
from mmsvc.domain.state import Transition
from mmsvc.domain.volatility import VolatilityEstimator

# engine.event.v1 event_type -> the order's status (FILL is handled as a fill).
EVENT_STATUS = {
    "ACCEPTED": OrderStatus.NEW,
    "REJECTED": OrderStatus.REJECTED,
    "CANCELED": OrderStatus.CANCELED,
    "EXPIRED": OrderStatus.EXPIRED,
}


def instrument_from_record(record: Mapping[str, Any]) -> Instrument:
    """An Instrument from an md.instrument.created/updated record (or the gRPC adapter's dict)."""
    return Instrument(
        symbol=record["symbol"],
        base_asset=record["base_asset"],
        quote_asset=record["quote_asset"],
        kind=InstrumentKind(record["kind"]),
        tick_size=Decimal(record["tick_size"]),
        lot_size=Decimal(record["lot_size"]),
        min_notional=Decimal(record["min_notional"]),
        status=InstrumentStatus(record["status"]),
    )


def fill_from_event(event: Mapping[str, Any]) -> Fill:
    """A Fill from an engine.event.v1 FILL record of our account."""
    liquidity = event.get("liquidity")
    return Fill(
        event_id=event["event_id"],
        side=Side(event["side"]),
        price=Decimal(event["fill_price"]),
        quantity=Decimal(event["fill_quantity"]),
        fee=Decimal(event.get("fee") or "0"),
        fee_asset=event.get("fee_asset"),
        liquidity=None if liquidity is None else Liquidity(liquidity),
        ts_ms=int(event["ts_ms"]),
    )


def _levels(levels: list[Mapping[str, str]]) -> list[tuple[Decimal, Decimal]]:
    return [(Decimal(lv["price"]), Decimal(lv["size"])) for lv in levels]


@dataclass(slots=True)
class SymbolTrader:
    """Everything one worker knows about its symbol, and the core's decision on it."""

    config: MMConfig
    limits: ServiceLimits
    state: SymbolState
    instrument: Instrument | None = None
    inventory: Inventory | None = None
    triggers: list[RiskTrigger] = field(default_factory=list)
    book: OrderBook = field(init=False)
    mark: MarkPrice | None = None
    volatility: VolatilityEstimator = field(default_factory=VolatilityEstimator)
    orders: dict[str, Order] = field(default_factory=dict)
    rejects: RejectStorm = field(init=False)
    stale: StaleEpisodes = field(default_factory=StaleEpisodes)
    last_quote: Quote | None = None
    holds: PlaceHolds = field(default_factory=PlaceHolds)
    fees_paid: Decimal = Decimal(0)  # quote asset, net of rebates, as stored with the position
    # The exchange's last halt and resume, by their own stamps (D23, D31).
    # The last halt and resume as (ts_ms, sent_ms): the exchange's stamp, then the Kafka
    # record's send time, which orders a halt and a resume of the same millisecond.
    halted_at: tuple[int, int] = (0, 0)
    resumed_at: tuple[int, int] = (0, 0)
    metadata_trading_ms: int = 0  # when the Metadata Service was last asked and said TRADING

    def __post_init__(self) -> None:
        self.book = OrderBook(self.config.symbol)
        self.rejects = RejectStorm(
            self.limits.reject_storm_count, self.limits.reject_storm_window_ms
        )

    @property
    def symbol(self) -> str:
        return self.config.symbol

    # ------------------------------------------------------------ market data

    def on_snapshot(self, record: Mapping[str, Any]) -> None:
        """Replace the book (ignored when older than a known book: D12)."""
        self.book.apply_snapshot(
            int(record["sequence"]),
            _levels(record["bids"]),
            _levels(record["asks"]),
            int(record["ts_ms"]),
        )
        self.holds.on_book()
        self._observe_mid(int(record["ts_ms"]))

    def on_delta(self, record: Mapping[str, Any]) -> None:
        """Apply a delta; a gap makes the book unknown until the next snapshot (D12)."""
        changes = [
            BookChange(BookSide(c["side"]), Decimal(c["price"]), Decimal(c["size"]))
            for c in record["changes"]
        ]
        self.book.apply_delta(int(record["sequence"]), changes, int(record["ts_ms"]))
        self.holds.on_book()
        self._observe_mid(int(record["ts_ms"]))

    def on_mark(self, record: Mapping[str, Any]) -> None:
        self.mark = MarkPrice(Decimal(record["mark_price"]), int(record["ts_ms"]))

    def _observe_mid(self, ts_ms: int) -> None:
        top = self.book.top()
        if top is not None:
            self.volatility.observe(top.mid, ts_ms)

    # ------------------------------------------------------------- instrument

    def on_instrument(
        self, instrument: Instrument, as_of_ms: int, *, from_metadata: bool = False
    ) -> None:
        """Created/updated or the Metadata answer: tick, lot and status; inventory starts.

        A status of TRADING never clears a halt the exchange sent (D31); a HALTED
        one counts as a halt stamped ``as_of_ms``: in doubt, halted (D23). The
        Metadata Service's TRADING, asked at ``as_of_ms``, marks older halts as
        history (see ``halt_is_history``).
        """
        if instrument.halted:
            self.halted_at = max(self.halted_at, (as_of_ms, as_of_ms))
        elif from_metadata:
            self.metadata_trading_ms = max(self.metadata_trading_ms, as_of_ms)
        self.instrument = instrument
        self._apply_exchange_status()
        if self.inventory is None:
            self.inventory = Inventory(self.symbol, instrument.base_asset)

    def exchange_halt(self, ts_ms: int, sent_ms: int = 0) -> None:
        """md.instrument.halt.v1: halted until a resume stamped after it (D23, D31)."""
        self.halted_at = max(self.halted_at, (ts_ms, sent_ms))
        self._apply_exchange_status()

    def exchange_resume(self, ts_ms: int, sent_ms: int = 0) -> None:
        """md.instrument.resume.v1: clears only a halt sent before it; never a reset.

        A halt and a resume stamped in the same millisecond (an exchange can halt
        and resume that fast) are ordered by their Kafka send times: replayed by a
        new group they arrive in any order, on two topics (D15, D31).
        """
        self.resumed_at = max(self.resumed_at, (ts_ms, sent_ms))
        self._apply_exchange_status()

    @property
    def halt_is_history(self) -> bool:
        """Halted by a halt stamped before the Metadata Service last said TRADING.

        Still halted (only a newer resume clears it: D31), but history: the
        resume that followed is on its way on another topic, so no kill latches.
        """
        return self.exchange_halted and self.halted_at[0] < self.metadata_trading_ms

    @property
    def exchange_halted(self) -> bool:
        """True while the last halt seen is not followed by a later resume (a tie halts)."""
        return self.halted_at > (0, 0) and self.resumed_at <= self.halted_at

    def _apply_exchange_status(self) -> None:
        if self.instrument is None:
            return
        status = InstrumentStatus.HALTED if self.exchange_halted else InstrumentStatus.TRADING
        if self.instrument.status is not status:
            self.instrument = replace(self.instrument, status=status)

    # ------------------------------------------------------------------ orders

    def placed(self, client_order_id: str, order: NewOrder) -> None:
        """An order whose PENDING row is committed and whose request is about to go (D10)."""
        self.orders[client_order_id] = Order(
            client_order_id,
            None,
            order.side,
            order.price,
            order.quantity,
            status=OrderStatus.PENDING,
        )

    def acknowledged(self, client_order_id: str, order_id: str) -> Order | None:
        """201 or ACCEPTED: the order rests; an event may have moved it further already.

        Orders are remembered until their final engine event (D22), so a 201 that
        comes after a flatten still finds its order and gets it canceled.
        """
        order = self.orders.get(client_order_id)
        if order is None:
            return None
        waiting = (OrderStatus.PENDING, OrderStatus.UNKNOWN)
        status = OrderStatus.NEW if order.status in waiting else order.status
        updated = replace(order, order_id=order.order_id or order_id, status=status)
        self.orders[client_order_id] = updated
        return updated

    def timed_out(self, client_order_id: str) -> None:
        """A place with no answer within its budget: UNKNOWN, still exposure (D10, D31)."""
        order = self.orders.get(client_order_id)
        if order is not None and order.status is OrderStatus.PENDING:
            self.orders[client_order_id] = replace(order, status=OrderStatus.UNKNOWN)

    def cancel_sent(self, client_order_id: str) -> None:
        order = self.orders.get(client_order_id)
        if order is not None and order.status not in FINAL_STATUSES:
            self.orders[client_order_id] = replace(order, status=OrderStatus.PENDING_CANCEL)

    def cancel_confirmed(self, client_order_id: str) -> None:
        """A DELETE answered 200: CANCELED, but its exposure stays until its event (D31)."""
        order = self.orders.get(client_order_id)
        if order is not None and order.status not in FINAL_STATUSES:
            self.orders[client_order_id] = replace(
                order, status=OrderStatus.CANCELED, awaiting_final_event=True
            )

    def finished(self, client_order_id: str, status: OrderStatus) -> None:  # noqa: ARG002 - callers name the final status; the order leaves either way
        """The order's final engine event (or a 4xx: it never existed): exposure released."""
        self.orders.pop(client_order_id, None)

    def unwanted(self) -> list[Order]:
        """Acknowledged orders that may rest at the venue while the symbol may not quote (D22)."""
        if self.state is SymbolState.ACTIVE:
            return []
        return [
            o
            for o in self.orders.values()
            if o.order_id is not None and o.status not in FINAL_STATUSES
        ]

    def on_order_event(self, event: Mapping[str, Any]) -> OrderStatus | None:
        """ACCEPTED/REJECTED/CANCELED/EXPIRED for our order; the resulting status."""
        cid, status = event["client_order_id"], EVENT_STATUS[event["event_type"]]
        if status is OrderStatus.NEW:
            order = self.acknowledged(cid, event["order_id"])
            return None if order is None else order.status
        self.finished(cid, status)
        return status

    def on_fill(self, fill: Fill, client_order_id: str, remaining: Decimal) -> bool:
        """Apply a fill once (by event id); False when it was seen before."""
        if self.inventory is None:  # the worker keeps such a fill aside (D1) and never calls this
            raise RuntimeError(f"{self.symbol}: a fill before the instrument is known")
        if not self.inventory.apply(fill):
            return False
        order = self.orders.get(client_order_id)
        if order is not None:
            if remaining <= 0:
                self.finished(client_order_id, OrderStatus.FILLED)
            else:
                filled = order.quantity - remaining
                self.orders[client_order_id] = replace(order, filled=filled)
        return True

    def open_orders(self) -> list[Order]:
        return list(self.orders.values())

    # ---------------------------------------------------------------- decision

    def valuation(self, now_ms: int) -> Decimal | None:
        """Mark for a fresh perpetual mark, else the (last known) mid (D5)."""
        if self.instrument is None:
            return None
        return valuation_price(
            self.instrument.kind,
            self.mark,
            self.book.last_mid,
            now_ms,
            self.limits.market_data_staleness_ms,
        )

    def _market(self, now_ms: int) -> MarketInputs:
        return MarketInputs(
            self.book.top(),
            self.valuation(now_ms),
            self.volatility.multiplier if self.config.volatility_multiplier else Decimal(1),
            halt_is_history=self.halt_is_history,
        )

    def decision_inputs(self, now_ms: int) -> tuple[object, ...] | None:
        """All that `decide` reads at `now_ms`; None while it would answer None.

        The clock enters only through the book's freshness (STALE_DATA) and the
        valuation (a mark's freshness), both part of the answer, so two equal
        answers give the same decision but for its quote's timestamp. The worker
        skips a decision whose inputs equal those of one that had nothing to do
        (issue 13: the CPU of an idle symbol).
        """
        if self.instrument is None or self.inventory is None:
            return None
        market = self._market(now_ms)
        inventory = self.inventory
        return (
            self.state,
            self.config,
            self.limits,
            self.instrument,
            market,
            stale_reason(market.top, now_ms, self.config, self.limits) is None,
            inventory,  # by identity: a rebuilt inventory is new
            inventory.quantity,  # every fill moves it
            inventory.realized_pnl,
            tuple(self.orders.values()),
        )

    def decide(self, now_ms: int) -> QuoteDecision | None:
        """The core's decision now; None while the instrument is unknown (D4)."""
        if self.instrument is None or self.inventory is None:
            return None
        market = self._market(now_ms)
        decision = decide(
            self.config,
            self.instrument,
            market,
            self.inventory,
            self.open_orders(),
            self.state,
            self.limits,
            now_ms,
        )
        if decision.quote is not None:
            self.last_quote = decision.quote
        return decision

    def position_and_pnl(self, now_ms: int) -> tuple[Decimal | None, Decimal | None]:
        """Position in USDT and total P&L at the valuation price; None while unknown.

        A flat position needs no price; any other needs one (D23: no defaults).
        """
        if self.inventory is None:
            return None, None
        if self.inventory.quantity == 0:
            return Decimal(0), self.inventory.realized_pnl
        valuation = self.valuation(now_ms)
        if valuation is None:
            return None, None
        return self.inventory.position_usdt(valuation), self.inventory.total_pnl(valuation)

    # ------------------------------------------------------------------- state

    def enter(self, transition: Transition, *, triggers: list[RiskTrigger] | None = None) -> None:
        """Take the state the core's state machine allowed; the only writer of ``state``."""
        if not transition.allowed:
            raise ValueError(f"refused transition applied: {transition.reason}")
        self.state = transition.state
        if triggers is not None:
            self.triggers = triggers
        if transition.previous is SymbolState.HALTED and transition.state is not SymbolState.HALTED:
            self.triggers = []
            self.rejects.clear()  # a reset clears the storm's window (D9)
