"""The simulated venue: instruments, markets, the market maker's orders and the faults.

One lock guards all of it: the Order Service's HTTP threads, the Metadata
gRPC threads, the admin endpoint and the feed thread all go through here.
Records to publish are queued while the lock is held, so the order of
messages on every topic is the order in which things happened; engine events
pass through a delay line (delays.py) that keeps that order when the
``engine_event_delay_ms`` fault holds them back.

A place held by the ``place_hold_ms`` fault waits outside the lock: until it
is created the order is in no listing and no cancel reaches it, as at a venue
whose request queue is slow (faults.py).
"""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from mmsvc.adapters.kafka import topics
from mmsvc.devstack.exchange import config as cfg
from mmsvc.devstack.exchange.delays import DelayLine, Sink
from mmsvc.devstack.exchange.faults import Faults, apply_update
from mmsvc.devstack.exchange.feed import FeedClock
from mmsvc.devstack.exchange.market import Market, Message, Trade, fmt
from mmsvc.devstack.exchange.matching import (
    Order,
    OrderStore,
    OtherAccounts,
    Record,
    engine_event,
    fill,
    order_view,
)

ACCOUNT_TYPE = "SYSTEM_MARKET_MAKER"


class VenueError(Exception):
    """A request the venue refuses: HTTP status, error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A well-formed ``POST /v1/orders`` body; business rules are checked by the venue."""

    client_order_id: str
    symbol: str
    side: str
    time_in_force: str
    price: Decimal
    quantity: Decimal
    account_id: str
    user_id: str
    account_type: str
    received_ns: int = 0  # when the Order Service began handling it (time.time_ns)


def now_ms() -> int:
    """Epoch milliseconds, UTC."""
    return time.time_ns() // 1_000_000


class Venue:
    """The exchange's state and every operation on it, each atomic under one lock."""

    def __init__(self, config: cfg.ExchangeConfig, sink: Sink, seed: int | None = None) -> None:
        self.config = config
        self.sink = sink
        self.lock = threading.Lock()
        self.rng = random.Random(seed)  # noqa: S311 - a simulation, not cryptography
        self.specs: dict[str, cfg.InstrumentSpec] = {}
        self.markets: dict[str, Market] = {}
        self.orders = OrderStore()
        self.others = OtherAccounts(config.other_accounts, self.rng)
        self.faults = Faults()
        self.events = DelayLine(sink)
        self._held: dict[str, threading.Event] = {}  # client_order_id -> created
        # Every fill of an order taken through the Order Service, as the venue made it
        # (before any event delay): the chaos checker's truth about our fills.
        self._fill_log: list[Record] = []
        self._feed = FeedClock(config.snapshot_interval_s, config.mark_interval_s)
        for spec, params in config.instruments:
            self._list(spec, params)
        for number in range(1, config.generated_instruments + 1):
            self._list(
                *cfg.generated_instrument(
                    config.generated_prefix, number, config.generated_msgs_per_s
                )
            )

    # --- Order Service ----------------------------------------------------------------

    def place(self, request: OrderRequest) -> tuple[int, Record]:
        """Take an order: the first answer for its client_order_id, or a new order or reject.

        Under the ``place_hold_ms`` fault the order is created only after the hold;
        a retry of the same client_order_id meanwhile waits for that one creation.
        """
        client_order_id = request.client_order_id
        with self.lock:
            first = self.orders.by_client_id.get(client_order_id)
            if first is not None:
                return first
            created = self._held.get(client_order_id)
            if created is None:
                hold_s = self.faults.place_hold_s(request.symbol)
                if hold_s <= 0:
                    return self._take_order(request)
                created = self._held[client_order_id] = threading.Event()
            else:
                hold_s = None  # a retry during the hold: the first request creates it
        if hold_s is None:
            created.wait()
            with self.lock:
                return self.orders.by_client_id[client_order_id]
        time.sleep(hold_s)  # the request sits in the venue's queue; nothing exists yet
        with self.lock:
            try:
                return self._take_order(request)
            finally:
                del self._held[client_order_id]
                created.set()

    def place_answer_delay_s(self, symbol: str) -> float:
        """How long the answer to a new order of ``symbol`` trails its creation (a fault)."""
        with self.lock:
            return self.faults.place_answer_delay_s(symbol)

    def cancel(self, order_id: str) -> Record:
        """Cancel an open order; VenueError 404 when unknown or already final."""
        with self.lock:
            order = self.orders.by_id.get(order_id)
            if order is None or not order.is_open:
                raise VenueError(404, "ORDER_NOT_FOUND", f"no open order {order_id}")
            self._cancel(order, "USER_CANCELED")
            return {"order_id": order_id, "status": "CANCELED"}

    def cancel_all(self, account_id: str, symbol: str | None) -> int:
        """Cancel every open order of the account (and symbol); how many were canceled."""
        with self.lock:
            found = self.orders.open_orders(account_id, symbol)
            for order in found:
                self._cancel(order, "CANCEL_ALL")
            return len(found)

    def list_orders(
        self,
        account_id: str | None,
        symbol: str | None,
        status: str | None,
        *,
        received: bool = False,
    ) -> list[Record]:
        """Orders as ``GET /v1/orders`` lists them; status OPEN means NEW or PARTIALLY_FILLED.

        ``received`` adds each order's ``received_ns`` (the admin listing only; the
        Order Service's contract response stays as CONTRACTS.md has it).
        """
        with self.lock:
            if status == "OPEN":
                found = self.orders.open_orders(account_id, symbol)
            else:
                found = [
                    o
                    for o in self.orders.by_id.values()
                    if account_id in (None, o.account_id)
                    and symbol in (None, o.symbol)
                    and status in (None, o.status)
                ]
            return [order_view(o, self.specs[o.symbol], received=received) for o in found]

    def log(self, account_id: str | None) -> Record:
        """The order and fill log of ``account_id`` (every account when None), for checkers.

        Orders carry ``created_ts_ms`` (alive from), ``closed_ts_ms`` (resting until,
        null while open) and ``received_ns``; fills their engine event_id and ``ts_ms``.
        """
        with self.lock:
            orders = [
                order_view(o, self.specs[o.symbol], received=True)
                for o in self.orders.by_id.values()
                if account_id in (None, o.account_id)
            ]
            fills = [f for f in self._fill_log if account_id in (None, f["account_id"])]
            return {"now_ms": now_ms(), "orders": orders, "fills": fills}

    def pending(self) -> Record:
        """What the race faults still hold: places not yet created, engine events not yet sent."""
        with self.lock:
            return {"held_places": len(self._held), "delayed_events": self.events.held}

    def close(self) -> None:
        """Release the engine events still held by the delay fault (the simulator stops)."""
        self.events.close()

    # --- Metadata Service -------------------------------------------------------------

    def instrument(self, symbol: str) -> cfg.InstrumentSpec | None:
        """The instrument as the Metadata Service knows it, None when unknown."""
        with self.lock:
            return self.specs.get(symbol)

    def instruments(self) -> list[cfg.InstrumentSpec]:
        """Every listed instrument, by symbol."""
        with self.lock:
            return [self.specs[s] for s in sorted(self.specs)]

    # --- admin: instruments, market, faults -------------------------------------------

    def create_instrument(self, spec: cfg.InstrumentSpec, params: cfg.MarketParams) -> None:
        """List a new instrument, start its market and announce it on md.instrument.created.v1."""
        with self.lock:
            if spec.symbol in self.specs:
                raise VenueError(409, "INSTRUMENT_EXISTS", f"{spec.symbol} is already listed")
            self._list(spec, params)
            self._emit(topics.INSTRUMENT_CREATED, self._instrument_record(spec))
            self._emit(*self.markets[spec.symbol].snapshot(now_ms()))

    def generate_instruments(
        self, count: int, prefix: str | None = None, msgs_per_s: float | None = None
    ) -> list[str]:
        """List generated instruments 1..``count`` that are not listed yet; the new symbols.

        Each new one is announced on md.instrument.created.v1 with its first snapshot.
        """
        prefix = self.config.generated_prefix if prefix is None else prefix
        rate = self.config.generated_msgs_per_s if msgs_per_s is None else msgs_per_s
        cfg.check_generated(count, prefix, rate)
        created = []
        with self.lock:
            for number in range(1, count + 1):
                if cfg.generated_symbol(prefix, number) not in self.specs:
                    spec, params = cfg.generated_instrument(prefix, number, rate)
                    self._list(spec, params)
                    self._emit(topics.INSTRUMENT_CREATED, self._instrument_record(spec))
                    self._emit(*self.markets[spec.symbol].snapshot(now_ms()))
                    created.append(spec.symbol)
        return created

    def update_instrument(self, symbol: str, changes: Mapping[str, Any]) -> cfg.InstrumentSpec:
        """Change tick, lot or min notional; re-grid the book; announce md.instrument.updated.v1."""
        with self.lock:
            spec = self._spec(symbol)
            merged = {**_spec_fields(spec), **changes, "symbol": symbol, "status": spec.status}
            updated = cfg.parse_instrument(merged)
            self.specs[symbol] = updated
            for message in self.markets[symbol].regrid(updated, now_ms()):
                self._emit(*message)
            self._emit(topics.INSTRUMENT_UPDATED, self._instrument_record(updated))
            return updated

    def set_status(self, symbol: str, status: str, reason: str | None) -> cfg.InstrumentSpec:
        """Halt or resume trading; announce it on md.instrument.halt.v1 / resume.v1."""
        with self.lock:
            spec = replace(self._spec(symbol), status=status)
            self.specs[symbol] = spec
            topic = topics.INSTRUMENT_HALT if status == "HALTED" else topics.INSTRUMENT_RESUME
            self._emit(topic, {"symbol": symbol, "reason": reason, "ts_ms": now_ms()})
            return spec

    def move(self, symbol: str, mid: Decimal) -> Record:
        """Jump ``symbol``'s mid; the market trades through to it, filling what it crosses."""
        with self.lock:
            self._spec(symbol)
            messages, trades = self.markets[symbol].move(mid, now_ms(), self._trading(symbol))
            self._publish_step(symbol, messages, trades)
            return self._market_view(symbol)

    def retune(self, symbol: str, changes: Mapping[str, Any]) -> Record:
        """Change a market's rate, volatility, jumps or shape from the next step on."""
        with self.lock:
            market = self._market(symbol)
            market.retune(cfg.update_market(market.params, changes, f"market {symbol}"))
            self._feed.wake(symbol)
            return self._market_view(symbol)

    def market_view(self, symbol: str) -> Record:
        """Mid, touch, sequence and parameters of ``symbol``'s market."""
        with self.lock:
            return self._market_view(symbol)

    def publish_snapshot(self, symbol: str) -> Record:
        """Send ``symbol``'s book snapshot now."""
        with self.lock:
            self._emit(*self._market(symbol).snapshot(now_ms()))
            return self._market_view(symbol)

    def skip_deltas(self, symbol: str, count: int) -> Record:
        """Consume ``count`` sequence numbers unsent: consumers see a gap."""
        with self.lock:
            market = self._market(symbol)
            for _ in range(count):
                market.skip_sequence()
            return self._market_view(symbol)

    def set_faults(self, update: Mapping[str, Any] | None) -> Faults:
        """Set the knobs in ``update`` (all back to healthy when None)."""
        with self.lock:
            self.faults = Faults() if update is None else apply_update(self.faults, update)
            self._feed.wake()  # a paused or resumed feed acts at the next tick
            return self.faults

    def current_faults(self) -> Faults:
        """The faults in force."""
        with self.lock:
            return self.faults

    # --- the feed -------------------------------------------------------------------

    def advance(self, now: float) -> int:
        """Run every market up to ``now`` (monotonic seconds); how many records were queued.

        A symbol owes nothing until its next message, snapshot or mark is due, so it
        costs one comparison a tick until then; the lock is taken per due symbol,
        so the Order Service's calls wait for one symbol's step at most.
        """
        queued = 0
        for symbol in self._feed.due_symbols(list(self.markets), now):
            with self.lock:
                queued += self._advance(symbol, now)
        return queued

    def _advance(self, symbol: str, now: float) -> int:
        market = self.markets[symbol]
        if self.faults.feed_paused_for(symbol):
            self._feed.pause(symbol)
            return 0
        ts = now_ms()
        due = self._feed.due(symbol, now, market.params.msgs_per_s)
        sent = 0
        if due.snapshot:
            self._emit(*market.snapshot(ts))
            sent += 1
        while sent < due.messages:
            messages, trades = market.step(due.step_s, ts, self._trading(symbol))
            self._publish_step(symbol, messages, trades)
            sent += max(len(messages), 1)
        self._feed.overspent(symbol, sent - due.messages)
        if due.mark and self.specs[symbol].kind == "PERPETUAL":
            self._emit(*market.mark(ts))
        return sent

    # --- internals ------------------------------------------------------------------

    def _take_order(self, request: OrderRequest) -> tuple[int, Record]:
        """Create or reject the order now and remember the answer for its client_order_id."""
        try:
            status, body = self._place(request)
        except VenueError as exc:
            status, body = exc.status, {"error": {"code": exc.code, "message": exc.message}}
        self.orders.remember_response(request.client_order_id, status, body)
        return status, body

    def _place(self, request: OrderRequest) -> tuple[int, Record]:
        spec = self.specs.get(request.symbol)
        if spec is None:
            raise VenueError(422, "UNKNOWN_SYMBOL", f"{request.symbol} is not listed")
        order = Order(
            order_id=str(uuid.uuid4()),
            client_order_id=request.client_order_id,
            account_id=request.account_id,
            user_id=request.user_id,
            symbol=request.symbol,
            side=request.side,
            time_in_force=request.time_in_force,
            price=request.price,
            quantity=request.quantity,
            created_ts_ms=now_ms(),
            received_ns=request.received_ns,
        )
        try:
            self._check(order, spec, request.account_type)
        except VenueError as exc:
            order.status = "REJECTED"
            self._emit(
                topics.ENGINE_EVENTS,
                engine_event(order, spec, "REJECTED", now_ms(), reason=exc.code),
            )
            raise
        self.orders.add(order)
        self._emit(topics.ENGINE_EVENTS, engine_event(order, spec, "ACCEPTED", order.created_ts_ms))
        if order.time_in_force == "GTC" and self.markets[spec.symbol].crosses(
            order.side, order.price
        ):
            self._take(order, spec)
        return 201, {
            "order_id": order.order_id,
            "client_order_id": order.client_order_id,
            "status": "NEW",
        }

    def _check(self, order: Order, spec: cfg.InstrumentSpec, account_type: str) -> None:
        """Raise the reject an exchange would give ``order``, if any."""
        if self.faults.reject_rate and self.rng.random() < self.faults.reject_rate:
            raise VenueError(
                422, "INJECTED_REJECT", "rejected by the simulator's reject-rate fault"
            )
        if account_type != ACCOUNT_TYPE:
            raise VenueError(422, "INVALID_ACCOUNT_TYPE", f"account_type must be {ACCOUNT_TYPE}")
        if spec.status != "TRADING":
            raise VenueError(422, "INSTRUMENT_HALTED", f"{spec.symbol} is halted")
        if order.price % spec.tick_size != 0:
            raise VenueError(
                422,
                "INVALID_TICK_SIZE",
                f"price {order.price} is not a multiple of tick {spec.tick_size}",
            )
        if order.quantity % spec.lot_size != 0:
            raise VenueError(
                422,
                "INVALID_LOT_SIZE",
                f"quantity {order.quantity} is not a multiple of lot {spec.lot_size}",
            )
        if order.price * order.quantity < spec.min_notional:
            raise VenueError(422, "MIN_NOTIONAL", f"notional below the minimum {spec.min_notional}")
        if order.time_in_force == "POST_ONLY" and self.markets[spec.symbol].crosses(
            order.side, order.price
        ):
            raise VenueError(422, "POST_ONLY_WOULD_CROSS", "a post-only order would take liquidity")

    def _take(self, order: Order, spec: cfg.InstrumentSpec) -> None:
        """Fill an aggressive GTC order against the book as a taker; the rest rests."""
        ts = now_ms()
        messages, fills = self.markets[spec.symbol].take(
            order.side, order.price, order.remaining, ts
        )
        for message in messages:
            self._emit(*message)
        for price, size in fills:
            self._emit(
                topics.ENGINE_EVENTS,
                fill(order, spec, price, size, "TAKER", self.config.taker_fee_bps, ts),
            )
        if not order.is_open:
            self.orders.close(order)

    def _cancel(self, order: Order, reason: str) -> None:
        order.status = "CANCELED"
        self.orders.close(order)
        self._emit(
            topics.ENGINE_EVENTS,
            engine_event(order, self.specs[order.symbol], "CANCELED", now_ms(), reason=reason),
        )

    def _publish_step(self, symbol: str, messages: list[Message], trades: list[Trade]) -> None:
        for message in messages:
            self._emit(*message)
        spec, ts, fee = self.specs[symbol], now_ms(), self.config.maker_fee_bps
        for trade in trades:
            for record in self.orders.fills_from_trade(trade, spec, fee, ts):
                self._emit(topics.ENGINE_EVENTS, record)
            for record in self.others.events_for_trade(trade, spec, fee, ts):
                self._emit(topics.ENGINE_EVENTS, record)

    def _list(self, spec: cfg.InstrumentSpec, params: cfg.MarketParams) -> None:
        self.specs[spec.symbol] = spec
        self.markets[spec.symbol] = Market(spec, params, random.Random(self.rng.random()))  # noqa: S311

    def _emit(self, topic: str, record: Record) -> None:
        symbol = record["symbol"]
        if topic == topics.ENGINE_EVENTS:
            if record["event_type"] == "FILL" and record["order_id"] in self.orders.by_id:
                self._fill_log.append(dict(record))
            self.events.put(topic, symbol, record, self.faults.event_delay_s(symbol))
        else:
            self.sink.put(topic, symbol, record)

    def _trading(self, symbol: str) -> bool:
        return self.specs[symbol].status == "TRADING"

    def _spec(self, symbol: str) -> cfg.InstrumentSpec:
        spec = self.specs.get(symbol)
        if spec is None:
            raise VenueError(404, "UNKNOWN_SYMBOL", f"{symbol} is not listed")
        return spec

    def _market(self, symbol: str) -> Market:
        self._spec(symbol)
        return self.markets[symbol]

    def _market_view(self, symbol: str) -> Record:
        market, spec = self.markets[symbol], self.specs[symbol]
        bid, ask = market.best_bid, market.best_ask
        params = {name: getattr(market.params, name) for name in cfg.MARKET_TUNABLES}
        return {
            "symbol": symbol,
            "status": spec.status,
            "mid": fmt(market.anchor, spec.tick_size),
            "best_bid": None if bid is None else fmt(bid, spec.tick_size),
            "best_ask": None if ask is None else fmt(ask, spec.tick_size),
            "sequence": market.sequence,
            "params": {k: list(v) if isinstance(v, tuple) else v for k, v in params.items()},
        }

    @staticmethod
    def _instrument_record(spec: cfg.InstrumentSpec) -> Record:
        return {**_spec_fields(spec), "ts_ms": now_ms()}


def _spec_fields(spec: cfg.InstrumentSpec) -> Record:
    return {
        "symbol": spec.symbol,
        "base_asset": spec.base_asset,
        "quote_asset": spec.quote_asset,
        "kind": spec.kind,
        "tick_size": format(spec.tick_size, "f"),
        "lot_size": format(spec.lot_size, "f"),
        "min_notional": format(spec.min_notional, "f"),
        "status": spec.status,
    }
