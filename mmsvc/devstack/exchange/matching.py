"""The market maker's orders at the simulated venue and the engine events they cause.

Pure logic, no I/O and no lock (the venue holds its lock around every call).
Every accepted, rejected, filled or canceled order yields its ``engine.event.v1``
record with a unique event_id; fills happen when the simulated market trades
through a resting order's price, partially when the trade is smaller.
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from mmsvc.devstack.exchange.config import InstrumentSpec
from mmsvc.devstack.exchange.market import BPS, Trade, fmt

Record = dict[str, Any]
FEE_GRID = Decimal("0.00000001")
OPEN = ("NEW", "PARTIALLY_FILLED")


@dataclass(slots=True)
class Order:
    """An order as the venue holds it; quantities on the instrument's lot grid."""

    order_id: str
    client_order_id: str
    account_id: str
    user_id: str
    symbol: str
    side: str
    time_in_force: str
    price: Decimal
    quantity: Decimal
    created_ts_ms: int
    filled: Decimal = Decimal(0)
    status: str = "NEW"
    received_ns: int = 0  # when the Order Service began handling its request (time.time_ns)
    closed_ts_ms: int | None = None  # when it stopped resting (filled or canceled): the log

    @property
    def remaining(self) -> Decimal:
        """What is left to fill."""
        return self.quantity - self.filled

    @property
    def is_open(self) -> bool:
        """Whether the order still rests (and can fill or be canceled)."""
        return self.status in OPEN


def order_view(order: Order, spec: InstrumentSpec, *, received: bool = False) -> Record:
    """The order as ``GET /v1/orders`` shows it, decimals as strings on the grid.

    ``received`` adds ``received_ns`` and ``closed_ts_ms``, for the simulator's
    admin listing and log only.
    """
    tick, lot = spec.tick_size, spec.lot_size
    view: Record = {
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "account_id": order.account_id,
        "user_id": order.user_id,
        "symbol": order.symbol,
        "side": order.side,
        "type": "LIMIT",
        "time_in_force": order.time_in_force,
        "price": fmt(order.price, tick),
        "quantity": fmt(order.quantity, lot),
        "filled_quantity": fmt(order.filled, lot),
        "remaining_quantity": fmt(order.remaining, lot),
        "status": order.status,
        "created_ts_ms": order.created_ts_ms,
    }
    if received:
        view["received_ns"] = order.received_ns
        view["closed_ts_ms"] = order.closed_ts_ms
    return view


def engine_event(
    order: Order, spec: InstrumentSpec, event_type: str, ts_ms: int, **extra: Any
) -> Record:
    """An ``engine.event.v1`` record for ``order``; ``extra`` fills the nullable fields."""
    record: Record = {
        "event_id": str(uuid.uuid4()),
        "event_type": event_type,
        "symbol": order.symbol,
        "order_id": order.order_id,
        "client_order_id": order.client_order_id,
        "account_id": order.account_id,
        "side": order.side,
        "price": fmt(order.price, spec.tick_size),
        "quantity": fmt(order.quantity, spec.lot_size),
        "fill_price": None,
        "fill_quantity": None,
        "remaining_quantity": fmt(order.remaining, spec.lot_size),
        "fee": None,
        "fee_asset": None,
        "liquidity": None,
        "reason": None,
        "ts_ms": ts_ms,
    }
    record.update(extra)
    return record


def fill(
    order: Order,
    spec: InstrumentSpec,
    price: Decimal,
    size: Decimal,
    liquidity: str,
    fee_bps: Decimal,
    ts_ms: int,
) -> Record:
    """Fill ``size`` of ``order`` at ``price``; the FILL event, fee in the quote asset."""
    order.filled += size
    order.status = "FILLED" if order.remaining <= 0 else "PARTIALLY_FILLED"
    fee = (price * size * fee_bps * BPS).quantize(FEE_GRID)
    return engine_event(
        order,
        spec,
        "FILL",
        ts_ms,
        fill_price=fmt(price, spec.tick_size),
        fill_quantity=fmt(size, spec.lot_size),
        fee=format(fee, "f"),
        fee_asset=spec.quote_asset,
        liquidity=liquidity,
    )


class OrderStore:
    """Every order the venue took, by id and by client_order_id; the open ones by symbol."""

    def __init__(self) -> None:
        self.by_id: dict[str, Order] = {}
        self.by_client_id: dict[str, tuple[int, Record]] = {}
        self._open: dict[str, dict[str, Order]] = {}

    def remember_response(self, client_order_id: str, status: int, body: Record) -> None:
        """Keep the first answer to ``client_order_id`` so a retry gets it again."""
        self.by_client_id.setdefault(client_order_id, (status, body))

    def add(self, order: Order) -> None:
        """Hold a new order; it rests until filled or canceled."""
        self.by_id[order.order_id] = order
        self._open.setdefault(order.symbol, {})[order.order_id] = order

    def close(self, order: Order) -> None:
        """Forget ``order`` as open (it is filled or canceled), noting when for the log."""
        if order.closed_ts_ms is None:
            order.closed_ts_ms = time.time_ns() // 1_000_000
        self._open.get(order.symbol, {}).pop(order.order_id, None)

    def open_orders(self, account_id: str | None = None, symbol: str | None = None) -> list[Order]:
        """The open orders, optionally of one account and one symbol, oldest first."""
        books: Iterable[dict[str, Order]] = (
            [self._open.get(symbol, {})] if symbol is not None else list(self._open.values())
        )
        found = [o for book in books for o in book.values() if account_id in (None, o.account_id)]
        return sorted(found, key=lambda o: o.created_ts_ms)

    def fills_from_trade(
        self, trade: Trade, spec: InstrumentSpec, fee_bps: Decimal, ts_ms: int
    ) -> list[Record]:
        """Fill the resting orders the trade went through, best price first, up to its size."""
        side = "SELL" if trade.aggressor_side == "BUY" else "BUY"
        hit = [
            o
            for o in self._open.get(spec.symbol, {}).values()
            if o.side == side
            and (o.price <= trade.price if side == "SELL" else o.price >= trade.price)
        ]
        hit.sort(key=lambda o: (o.price if side == "SELL" else -o.price, o.created_ts_ms))
        events, left = [], trade.size
        for order in hit:
            if left <= 0:
                break
            size = min(left, order.remaining)
            left -= size
            events.append(fill(order, spec, order.price, size, "MAKER", fee_bps, ts_ms))
            if not order.is_open:
                self.close(order)
        return events


class OtherAccounts:
    """Engine events of accounts other than the market maker's, mixed into the topic."""

    def __init__(self, accounts: tuple[str, ...], rng: random.Random) -> None:
        self.accounts = accounts
        self.rng = rng

    def events_for_trade(
        self, trade: Trade, spec: InstrumentSpec, fee_bps: Decimal, ts_ms: int
    ) -> list[Record]:
        """Each public trade fills some other account's order; some orders churn too."""
        if not self.accounts:
            return []
        side = "SELL" if trade.aggressor_side == "BUY" else "BUY"
        order = self._order(spec.symbol, side, trade.price, trade.size, ts_ms)
        events = [fill(order, spec, trade.price, trade.size, "MAKER", fee_bps, ts_ms)]
        if self.rng.random() < 0.5:
            churn = self._order(spec.symbol, side, trade.price, trade.size, ts_ms)
            events.append(engine_event(churn, spec, "ACCEPTED", ts_ms))
            churn.status = "CANCELED"
            events.append(engine_event(churn, spec, "CANCELED", ts_ms, reason="USER_CANCELED"))
        return events

    def _order(self, symbol: str, side: str, price: Decimal, size: Decimal, ts_ms: int) -> Order:
        return Order(
            order_id=str(uuid.uuid4()),
            client_order_id=str(uuid.uuid4()),
            account_id=self.rng.choice(self.accounts),
            user_id=str(uuid.uuid4()),
            symbol=symbol,
            side=side,
            time_in_force="GTC",
            price=price,
            quantity=size,
            created_ts_ms=ts_ms,
        )
