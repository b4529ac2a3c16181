"""One instrument's simulated public market: a random-walk mid, a book of levels, trades.

Pure logic, no I/O and no lock: the venue calls it under its lock and publishes
the records it returns. Every book change goes out as a delta whose sequence
is the last one + 1, so a consumer that applies the deltas to a snapshot holds
exactly the book of the next snapshot (CONTRACTS.md, md.orderbook.*).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from mmsvc.adapters.kafka import topics
from mmsvc.devstack.exchange.config import InstrumentSpec, MarketParams

Record = dict[str, Any]
Message = tuple[str, Record]
BPS = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class Trade:
    """A public trade: the aggressor's side, price and size."""

    trade_id: str
    price: Decimal
    size: Decimal
    aggressor_side: str


def fmt(value: Decimal, grid: Decimal) -> str:
    """``value`` as a plain decimal string with the grid's number of places."""
    if value == 0:
        return "0"
    return format(value.quantize(grid), "f")


class Market:
    """The simulated market of one instrument; sequence numbers start at 1."""

    def __init__(self, spec: InstrumentSpec, params: MarketParams, rng: random.Random) -> None:
        self.spec = spec
        self.params = params
        self.rng = rng
        self.latent_mid = params.mid
        self.anchor = self._on_grid(params.mid)
        self.bids: dict[Decimal, Decimal] = {}
        self.asks: dict[Decimal, Decimal] = {}
        self.sequence = 1
        self._trade_no = 0
        self._recenter()

    # --- what the market looks like -------------------------------------------------

    @property
    def best_bid(self) -> Decimal | None:
        """The highest bid price, None when the bid side is empty."""
        return max(self.bids) if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        """The lowest ask price, None when the ask side is empty."""
        return min(self.asks) if self.asks else None

    def snapshot(self, ts_ms: int) -> Message:
        """The full book at the current sequence (sent at start, on demand, periodically)."""
        tick, lot = self.spec.tick_size, self.spec.lot_size
        bids = [
            {"price": fmt(p, tick), "size": fmt(self.bids[p], lot)}
            for p in sorted(self.bids, reverse=True)
        ]
        asks = [{"price": fmt(p, tick), "size": fmt(self.asks[p], lot)} for p in sorted(self.asks)]
        record = {
            "symbol": self.spec.symbol,
            "sequence": self.sequence,
            "bids": bids,
            "asks": asks,
            "ts_ms": ts_ms,
        }
        return topics.ORDERBOOK_SNAPSHOT, record

    def mark(self, ts_ms: int) -> Message:
        """The mark (book mid) and index (latent mid) prices, both on the tick grid."""
        bid, ask = self.best_bid, self.best_ask
        mark = (
            self._on_grid((bid + ask) / 2) if bid is not None and ask is not None else self.anchor
        )
        record = {
            "symbol": self.spec.symbol,
            "mark_price": fmt(mark, self.spec.tick_size),
            "index_price": fmt(self._on_grid(self.latent_mid), self.spec.tick_size),
            "ts_ms": ts_ms,
        }
        return topics.MARK, record

    # --- how it moves ---------------------------------------------------------------

    def step(
        self, dt: float, ts_ms: int, trading: bool = True
    ) -> tuple[list[Message], list[Trade]]:
        """Advance ``dt`` seconds: a mid move with its sweeping trade, a trade, or a resize."""
        self.latent_mid = self._walk(self.latent_mid, dt)
        if self._on_grid(self.latent_mid) != self.anchor:
            return self._reprice(ts_ms, trading)
        if trading and self.rng.random() < 0.3:
            return self._trade_at_touch(self.rng.choice(("BUY", "SELL")), ts_ms)
        return self._delta(self._resize_one_level(), ts_ms), []

    def move(
        self, new_mid: Decimal, ts_ms: int, trading: bool = True
    ) -> tuple[list[Message], list[Trade]]:
        """Jump the mid to ``new_mid`` at once; the market trades through to it."""
        self.latent_mid = new_mid
        if self._on_grid(new_mid) == self.anchor:
            return [], []
        return self._reprice(ts_ms, trading)

    def take(
        self, side: str, limit: Decimal, quantity: Decimal, ts_ms: int
    ) -> tuple[list[Message], list[tuple[Decimal, Decimal]]]:
        """Fill an aggressive order against the book up to ``limit``: its trades and delta."""
        book = self.asks if side == "BUY" else self.bids
        fills: list[tuple[Decimal, Decimal]] = []
        changes: list[tuple[str, Decimal, Decimal]] = []
        for price in sorted(book, reverse=side == "SELL"):
            if quantity <= 0 or (price > limit if side == "BUY" else price < limit):
                break
            size = min(quantity, book[price])
            fills.append((price, size))
            quantity -= size
            changes.append(
                self._set_level("ASK" if side == "BUY" else "BID", price, book[price] - size)
            )
        messages = [
            self._trade_record(Trade(self._next_trade_id(), p, s, side), ts_ms) for p, s in fills
        ]
        return messages + self._delta(changes, ts_ms), fills

    def crosses(self, side: str, price: Decimal) -> bool:
        """Whether an order at ``price`` would trade at once against the book."""
        if side == "BUY":
            return self.best_ask is not None and price >= self.best_ask
        return self.best_bid is not None and price <= self.best_bid

    def retune(self, params: MarketParams) -> None:
        """Use new market parameters from the next step on (the mid is kept)."""
        self.params = replace(params, mid=self.anchor)

    def regrid(self, spec: InstrumentSpec, ts_ms: int) -> list[Message]:
        """Adopt a new tick or lot: one delta empties the old book, the next fills the new grid."""
        removals = [self._set_level("BID", p, Decimal(0)) for p in sorted(self.bids)]
        removals += [self._set_level("ASK", p, Decimal(0)) for p in sorted(self.asks)]
        messages = self._delta(removals, ts_ms)  # formatted on the old grid, where they were
        self.spec = spec
        self.anchor = self._on_grid(self.latent_mid)
        return messages + self._delta(self._recenter(), ts_ms)

    def skip_sequence(self) -> None:
        """Consume a sequence number without sending its delta: a gap for consumers."""
        self.sequence += 1

    # --- internals ------------------------------------------------------------------

    def _walk(self, mid: Decimal, dt: float) -> Decimal:
        ret = self.rng.gauss(0.0, self.params.volatility_bps * math.sqrt(max(dt, 0.0)))
        if self.rng.random() < self.params.jump_probability * dt:
            ret += self.rng.choice((-1.0, 1.0)) * self.params.jump_bps
        moved = mid * (1 + Decimal(repr(ret)) * BPS)
        return max(moved, self.spec.tick_size * (self.params.half_spread_ticks + 1))

    def _reprice(self, ts_ms: int, trading: bool) -> tuple[list[Message], list[Trade]]:
        up = self._on_grid(self.latent_mid) > self.anchor
        self.anchor = self._on_grid(self.latent_mid)
        messages = self._delta(self._recenter(), ts_ms)
        if not trading:
            return messages, []
        trade_messages, trades = self._trade_at_touch("BUY" if up else "SELL", ts_ms)
        return messages + trade_messages, trades

    def _trade_at_touch(self, aggressor: str, ts_ms: int) -> tuple[list[Message], list[Trade]]:
        """A trade at the best price of the side the aggressor hits; it eats into that level."""
        book, side = (self.asks, "ASK") if aggressor == "BUY" else (self.bids, "BID")
        if not book:
            return [], []
        price = min(book) if aggressor == "BUY" else max(book)
        size = min(book[price], self._lots(self.params.trade_size_lots))
        trade = Trade(self._next_trade_id(), price, size, aggressor)
        change = self._set_level(side, price, book[price] - size)
        return [self._trade_record(trade, ts_ms), *self._delta([change], ts_ms)], [trade]

    def _resize_one_level(self) -> list[tuple[str, Decimal, Decimal]]:
        side = self.rng.choice(("BID", "ASK"))
        price = self.rng.choice(self._target_prices(side))
        return [self._set_level(side, price, self._lots(self.params.level_size_lots))]

    def _recenter(self) -> list[tuple[str, Decimal, Decimal]]:
        """Move the book's levels to the grid around the anchor; keep the sizes of kept prices."""
        changes = []
        for side, book in (("BID", self.bids), ("ASK", self.asks)):
            target = set(self._target_prices(side))
            changes += [self._set_level(side, p, Decimal(0)) for p in sorted(set(book) - target)]
            for price in sorted(target - set(book)):
                changes.append(
                    self._set_level(side, price, self._lots(self.params.level_size_lots))
                )
        return changes

    def _target_prices(self, side: str) -> list[Decimal]:
        tick, p = self.spec.tick_size, self.params
        sign = -1 if side == "BID" else 1
        best = self.anchor + sign * p.half_spread_ticks * tick
        prices = [best + sign * i * p.level_step_ticks * tick for i in range(p.levels)]
        return [price for price in prices if price > 0]

    def _set_level(self, side: str, price: Decimal, size: Decimal) -> tuple[str, Decimal, Decimal]:
        book = self.bids if side == "BID" else self.asks
        if size > 0:
            book[price] = size
        else:
            book.pop(price, None)
        return side, price, max(size, Decimal(0))

    def _delta(self, changes: list[tuple[str, Decimal, Decimal]], ts_ms: int) -> list[Message]:
        if not changes:
            return []
        self.sequence += 1
        tick, lot = self.spec.tick_size, self.spec.lot_size
        wire = [{"side": s, "price": fmt(p, tick), "size": fmt(z, lot)} for s, p, z in changes]
        record = {
            "symbol": self.spec.symbol,
            "sequence": self.sequence,
            "changes": wire,
            "ts_ms": ts_ms,
        }
        return [(topics.ORDERBOOK_DELTA, record)]

    def _trade_record(self, trade: Trade, ts_ms: int) -> Message:
        record = {
            "symbol": self.spec.symbol,
            "trade_id": trade.trade_id,
            "price": fmt(trade.price, self.spec.tick_size),
            "size": fmt(trade.size, self.spec.lot_size),
            "aggressor_side": trade.aggressor_side,
            "ts_ms": ts_ms,
        }
        return topics.TRADES, record

    def _next_trade_id(self) -> str:
        self._trade_no += 1
        return f"{self.spec.symbol}-{self._trade_no}"

    def _lots(self, bounds: tuple[int, int]) -> Decimal:
        return self.rng.randint(*bounds) * self.spec.lot_size

    def _on_grid(self, price: Decimal) -> Decimal:
        tick = self.spec.tick_size
        return max((price / tick).to_integral_value() * tick, tick)
