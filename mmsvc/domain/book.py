"""The order book of one symbol, kept from snapshots and deltas (ARCHITECTURE D12).

Snapshots and deltas come on two topics, so a delta may arrive before the
snapshot it follows: after a takeover or a start the supervisor replays the
last seconds of both (D15 as amended in adapters/kafka/consumer.py), and the two
partitions are read side by side. Deltas that arrive while the book is unknown
wait (deltas of one symbol come in sequence order, one partition), and a
snapshot applies those that follow it, so the book is known at the first
snapshot instead of the one after it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from mmsvc.domain.model import ZERO

_TWO = Decimal(2)
# Deltas kept while the book waits for a snapshot: a worker's queue (the spec's 1000).
WAITING_DELTAS_MAX = 1000


class BookSide(StrEnum):
    """The side of a book level, as spelled in md.orderbook.delta.v1."""

    BID = "BID"
    ASK = "ASK"


@dataclass(frozen=True, slots=True)
class TopOfBook:
    """Best bid and ask of a known, uncrossed book, stamped with its last message's ts_ms."""

    best_bid: Decimal
    best_ask: Decimal
    ts_ms: int

    @property
    def mid(self) -> Decimal:
        """The midpoint of best bid and best ask."""
        return (self.best_bid + self.best_ask) / _TWO


@dataclass(frozen=True, slots=True)
class BookChange:
    """One change of a delta; a size of zero removes the level."""

    side: BookSide
    price: Decimal
    size: Decimal


class _Ladder:
    """One side of the book: price -> size, with the best price cached."""

    __slots__ = ("_best", "_dirty", "_high_is_best", "levels")

    def __init__(self, high_is_best: bool) -> None:
        self.levels: dict[Decimal, Decimal] = {}
        self._high_is_best = high_is_best
        self._best: Decimal | None = None
        self._dirty = False

    def replace(self, levels: Iterable[tuple[Decimal, Decimal]]) -> None:
        self.levels = {price: size for price, size in levels if size > ZERO}
        self._dirty = True

    def set(self, price: Decimal, size: Decimal) -> None:
        if size > ZERO:
            self.levels[price] = size
            best = self._best
            if not self._dirty and (
                best is None or (price > best if self._high_is_best else price < best)
            ):
                self._best = price
        elif self.levels.pop(price, None) is not None and price == self._best:
            self._dirty = True

    def best_after(self, changes: list[BookChange], side: BookSide) -> Decimal | None:
        """The best price this side would have after ``changes``, without applying them."""
        pick = max if self._high_is_best else min
        final = {c.price: c.size for c in changes if c.side is side}  # the last change wins
        removed = {price for price, size in final.items() if size <= ZERO}
        added = [price for price, size in final.items() if size > ZERO]
        best = self.best()
        if best is not None and best in removed:  # only then is the ladder scanned
            best = pick((p for p in self.levels if p not in removed), default=None)
        candidates = added if best is None else [*added, best]
        return pick(candidates) if candidates else None

    def best(self) -> Decimal | None:
        if self._dirty:
            if not self.levels:
                self._best = None
            else:
                self._best = max(self.levels) if self._high_is_best else min(self.levels)
            self._dirty = False
        return self._best


class OrderBook:
    """A book that knows when it cannot be trusted: after a gap, or crossed, until a snapshot."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self._bids = _Ladder(high_is_best=True)
        self._asks = _Ladder(high_is_best=False)
        self._sequence: int | None = None
        self._ts_ms: int | None = None
        self._synced = False
        self._last_mid: Decimal | None = None
        self._waiting: deque[tuple[int, list[BookChange], int]] = deque(maxlen=WAITING_DELTAS_MAX)
        self.unknown_reason: str | None = "no snapshot yet"

    @property
    def sequence(self) -> int | None:
        """The sequence of the last snapshot or delta applied."""
        return self._sequence

    @property
    def is_known(self) -> bool:
        """True while the book is in sequence and uncrossed (it may still be one-sided)."""
        return self._synced

    def apply_snapshot(
        self,
        sequence: int,
        bids: Iterable[tuple[Decimal, Decimal]],
        asks: Iterable[tuple[Decimal, Decimal]],
        ts_ms: int,
    ) -> bool:
        """Replace the book unless the snapshot is older than it; return True if applied."""
        last = self._sequence
        if last is not None and (sequence < last or (not self._synced and sequence == last)):
            return False  # D12: an older snapshot never rewinds the book
        bids, asks = list(bids), list(asks)
        bid = max((p for p, s in bids if s > ZERO), default=None)
        ask = min((p for p, s in asks if s > ZERO), default=None)
        if bid is not None and ask is not None and bid >= ask:
            # Checked before anything is stored (D24): a crossed book is never kept.
            self.mark_unknown(f"crossed snapshot: bid {bid} >= ask {ask}")
            return False
        self._bids.replace(bids)
        self._asks.replace(asks)
        self._sequence, self._ts_ms = sequence, ts_ms
        self._synced, self.unknown_reason = True, None
        self._apply_waiting()
        return True

    def apply_delta(self, sequence: int, changes: Iterable[BookChange], ts_ms: int) -> bool:
        """Apply a delta that follows the last one; a gap makes the book unknown (D12).

        While the book is unknown the delta waits for the snapshot it follows.
        """
        last = self._sequence
        if not self._synced:
            self._waiting.append((sequence, list(changes), ts_ms))
            return False
        if last is None or sequence <= last:
            return False  # older deltas are duplicates
        if sequence != last + 1:
            self.mark_unknown(f"sequence gap: expected {last + 1}, got {sequence}")
            self._waiting.append((sequence, list(changes), ts_ms))
            return False
        return self._apply_changes(sequence, list(changes), ts_ms)

    def _apply_waiting(self) -> None:
        """Apply the waiting deltas that follow the snapshot just applied; drop older ones."""
        waiting = list(self._waiting)
        self._waiting.clear()
        for index, (sequence, changes, ts_ms) in enumerate(waiting):
            last = self._sequence
            if last is None or sequence <= last:
                continue  # the snapshot already holds it
            if sequence != last + 1:
                # A delta after the snapshot went missing: the book is behind (D12).
                self.mark_unknown(f"sequence gap: expected {last + 1}, got {sequence}")
                self._waiting.extend(waiting[index:])
                return
            if not self._apply_changes(sequence, changes, ts_ms):
                return  # crossed: unknown again, until a newer snapshot

    def _apply_changes(self, sequence: int, changes: list[BookChange], ts_ms: int) -> bool:
        bid = self._bids.best_after(changes, BookSide.BID)
        ask = self._asks.best_after(changes, BookSide.ASK)
        if bid is not None and ask is not None and bid >= ask:
            # Checked before anything is stored (D24): the delta is refused whole.
            self.mark_unknown(f"crossed book: bid {bid} >= ask {ask}")
            return False
        for change in changes:
            ladder = self._bids if change.side is BookSide.BID else self._asks
            ladder.set(change.price, change.size)
        self._sequence, self._ts_ms = sequence, ts_ms
        return True

    def mark_unknown(self, reason: str) -> None:
        """Distrust the book until the next newer snapshot (a gap, or a shed message: D1)."""
        if self._synced:
            self._remember_mid()
        self._synced, self.unknown_reason = False, reason

    def top(self) -> TopOfBook | None:
        """Best bid and ask, or None while the book is unknown or a side is empty."""
        if not self._synced:
            return None
        bid, ask = self._bids.best(), self._asks.best()
        if bid is None or ask is None or self._ts_ms is None:
            return None
        return TopOfBook(bid, ask, self._ts_ms)

    @property
    def last_mid(self) -> Decimal | None:
        """The current mid, or the last one known while the book is unknown (D5)."""
        self._remember_mid()
        return self._last_mid

    def age_ms(self, now_ms: int) -> int | None:
        """Milliseconds since the ts_ms of the last book message applied (D12)."""
        return None if self._ts_ms is None else now_ms - self._ts_ms

    def depth(self, side: BookSide) -> dict[Decimal, Decimal]:
        """A copy of one side's levels, price -> size."""
        return dict((self._bids if side is BookSide.BID else self._asks).levels)

    def _remember_mid(self) -> None:
        top = self.top()
        if top is not None:
            self._last_mid = top.mid
