"""A bare post-only quoter: the behaviour before D23, as the crosses benchmark's baseline.

It runs in the benchmark's process for an account of its own. One plain
consumer keeps each symbol's book from md.orderbook snapshots and deltas (the
service's own pure OrderBook and Avro codec); one thread per symbol wakes every
quote interval, prices a post-only bid and ask at the service's spread on the
tick grid (the service's rule, without the inventory skew) and replaces an
order only when its wanted price changed, within the service's
MAX_ORDERS_PER_SECOND bucket. A POST_ONLY_WOULD_CROSS is counted and nothing
else happens: no hold, the next interval places again on whatever book it has.

The simulator checks post-only against its simulated public book only
(``Market.crosses``), never against other accounts' resting orders, so this
quoter and the service do not change each other's crosses.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import requests
from confluent_kafka import OFFSET_END, Consumer, TopicPartition

from mmsvc.adapters.kafka import topics
from mmsvc.adapters.kafka.codec import AvroCodec, DecodeError
from mmsvc.adapters.kafka.consumer import consumer_config
from mmsvc.domain.book import BookChange, BookSide, OrderBook
from mmsvc.domain.killswitch import RejectStorm
from mmsvc.domain.quoting import ceil_to, floor_to
from mmsvc.domain.ratelimit import TokenBucket

POST_ONLY_WOULD_CROSS = "POST_ONLY_WOULD_CROSS"
BASELINE_USER = "00000000-0000-0000-0000-0000000000b1"
_BPS = Decimal(10_000)
_TWO = Decimal(2)


# ------------------------------------------------------------------ pure rules


@dataclass(frozen=True, slots=True)
class Grid:
    """An instrument's price and quantity grid."""

    tick: Decimal
    lot: Decimal
    min_notional: Decimal


def quote_prices(
    best_bid: Decimal, best_ask: Decimal, spread_bps: Decimal, tick: Decimal
) -> tuple[Decimal, Decimal]:
    """Bid and ask ``spread_bps`` apart around the mid, as mmsvc.domain.quoting prices
    one level with no position: bids round down, asks up, and each stays one tick
    inside the opposite best (a post-only order must never take on the book we see)."""
    mid = (best_bid + best_ask) / _TWO
    half = mid * spread_bps / _BPS / _TWO
    bid, ask = floor_to(mid - half, tick), ceil_to(mid + half, tick)
    if bid >= ask:
        ask = bid + tick
    if bid >= best_ask:
        bid = floor_to(best_ask - tick, tick)
    if ask <= best_bid:
        ask = ceil_to(best_bid + tick, tick)
    return bid, ask


def order_quantity(price: Decimal, order_usdt: Decimal, grid: Grid) -> Decimal | None:
    """``order_usdt`` worth at ``price`` down to the lot; None below a lot or min_notional."""
    if price <= 0:
        return None
    quantity = order_usdt / price // grid.lot * grid.lot
    if quantity <= 0 or quantity * price < grid.min_notional:
        return None
    return quantity


def first_storm_ms(times_ms: Sequence[int], count: int, window_ms: int) -> int | None:
    """When the pre-D23 rule (every reject counts) would have fired REJECT_STORM on
    rejects at ``times_ms``: the first time ``count`` of them fall within ``window_ms``."""
    storm = RejectStorm(count, window_ms)
    for index, at in enumerate(sorted(times_ms)):
        if storm.record(str(index), at) is not None:
            return at
    return None


# --------------------------------------------------------------- the quoter


@dataclass
class Tally:
    """One symbol's requests and answers."""

    places: int = 0
    accepted: int = 0
    crosses: int = 0
    other_rejects: int = 0
    errors: int = 0
    cross_ms: list[int] = field(default_factory=list)  # wall ms of each cross answer

    def clear(self) -> None:
        """Start counting afresh (the warm-up's answers are not measured)."""
        self.places = self.accepted = self.crosses = self.other_rejects = self.errors = 0
        self.cross_ms = []


@dataclass(slots=True)
class _Resting:
    order_id: str
    price: Decimal


class BareQuoter:
    """Quotes ``grids``' symbols for ``account`` until stopped; counts places and crosses."""

    def __init__(
        self,
        *,
        kafka: str,
        registry: str,
        order_service: str,
        account: str,
        grids: Mapping[str, Grid],
        spread_bps: Decimal,
        order_usdt: Decimal,
        interval_ms: int,
        max_orders_per_second: int,
    ) -> None:
        self.account, self.grids = account, dict(grids)
        self.spread_bps, self.order_usdt = spread_bps, order_usdt
        self.interval_s = interval_ms / 1000
        self.rate = max_orders_per_second
        self.order_service = order_service
        self.tallies = {symbol: Tally() for symbol in grids}
        self._books = {symbol: OrderBook(symbol) for symbol in grids}
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._closed = False
        self._codec = AvroCodec(registry)
        self._consumer = Consumer(
            consumer_config({"bootstrap.servers": kafka}, f"bench-bare-{uuid.uuid4().hex[:8]}")
        )
        assigned = []
        for topic in (topics.ORDERBOOK_SNAPSHOT, topics.ORDERBOOK_DELTA):
            partitions = self._consumer.list_topics(topic, timeout=10).topics[topic].partitions
            assigned += [TopicPartition(topic, p, OFFSET_END) for p in partitions]
        self._consumer.assign(assigned)
        self._threads = [threading.Thread(target=self._consume, name="bare-book", daemon=True)]
        self._threads += [
            threading.Thread(target=self._quote, args=(s,), name=f"bare-{s}", daemon=True)
            for s in grids
        ]

    def start(self) -> None:
        self._running.set()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop quoting, cancel every order of the account, release the consumer (once)."""
        if self._closed:
            return
        self._closed = True
        self._running.clear()
        for thread in self._threads:
            if thread.is_alive():
                thread.join(10)
        with requests.Session() as http:
            url = f"{self.order_service}/v1/orders/cancel-all"
            http.post(url, json={"account_id": self.account}, timeout=10).raise_for_status()
        self._consumer.close()
        self._codec.close()

    def known_books(self) -> int:
        """How many symbols' books are known (a snapshot arrived)."""
        with self._lock:
            return sum(book.top() is not None for book in self._books.values())

    # ---------------------------------------------------------------- threads

    def _consume(self) -> None:
        while self._running.is_set():
            message = self._consumer.poll(0.05)
            if message is None or message.error() is not None:
                continue
            topic = message.topic()
            if topic is None:
                continue
            try:
                record = self._codec.decode(topic, message.value())
            except DecodeError:
                continue
            book = self._books.get(record["symbol"])
            if book is None:
                continue
            with self._lock:
                _apply(book, topic, record)

    def _quote(self, symbol: str) -> None:
        grid, tally = self.grids[symbol], self.tallies[symbol]
        resting: dict[str, _Resting | None] = {"BUY": None, "SELL": None}
        bucket = TokenBucket(self.rate, _now_ms())
        next_at = time.monotonic()
        with requests.Session() as http:
            while self._running.is_set():
                next_at += self.interval_s
                time.sleep(max(0.0, next_at - time.monotonic()))
                with self._lock:
                    top = self._books[symbol].top()
                if top is None:
                    continue
                bid, ask = quote_prices(top.best_bid, top.best_ask, self.spread_bps, grid.tick)
                for side, price in (("BUY", bid), ("SELL", ask)):
                    current = resting[side]
                    if current is not None and current.price == price:
                        continue
                    if current is not None:
                        self._cancel(http, current.order_id)
                        resting[side] = None
                    quantity = order_quantity(price, self.order_usdt, grid)
                    if quantity is not None and bucket.try_acquire(_now_ms()):
                        resting[side] = self._place(http, tally, symbol, side, price, quantity)

    def _place(
        self,
        http: requests.Session,
        tally: Tally,
        symbol: str,
        side: str,
        price: Decimal,
        quantity: Decimal,
    ) -> _Resting | None:
        body = {
            "client_order_id": str(uuid.uuid4()),
            "symbol": symbol,
            "side": side,
            "type": "LIMIT",
            "time_in_force": "POST_ONLY",
            "price": str(price),
            "quantity": str(quantity),
            "account_id": self.account,
            "user_id": BASELINE_USER,
            "account_type": "SYSTEM_MARKET_MAKER",
        }
        tally.places += 1
        try:
            response = http.post(f"{self.order_service}/v1/orders", json=body, timeout=5)
        except requests.RequestException:
            tally.errors += 1
            return None
        if response.status_code == 201:
            tally.accepted += 1
            return _Resting(str(response.json()["order_id"]), price)
        if _code(response) == POST_ONLY_WOULD_CROSS:
            tally.crosses += 1
            tally.cross_ms.append(_now_ms())
        else:
            tally.other_rejects += 1
        return None

    def _cancel(self, http: requests.Session, order_id: str) -> None:
        # 200, or 404 once it filled: gone either way for a quoter with no memory.
        with contextlib.suppress(requests.RequestException):
            http.delete(f"{self.order_service}/v1/orders/{order_id}", timeout=5)


def _apply(book: OrderBook, topic: str, record: dict[str, Any]) -> None:
    if topic == topics.ORDERBOOK_SNAPSHOT:
        book.apply_snapshot(
            int(record["sequence"]),
            [(Decimal(level["price"]), Decimal(level["size"])) for level in record["bids"]],
            [(Decimal(level["price"]), Decimal(level["size"])) for level in record["asks"]],
            int(record["ts_ms"]),
        )
    else:
        changes = [
            BookChange(BookSide(c["side"]), Decimal(c["price"]), Decimal(c["size"]))
            for c in record["changes"]
        ]
        book.apply_delta(int(record["sequence"]), changes, int(record["ts_ms"]))


def _code(response: requests.Response) -> str | None:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return None


def _now_ms() -> int:
    return time.time_ns() // 1_000_000
