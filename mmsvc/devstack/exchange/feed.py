"""The market data feed's timing: messages owed per symbol from its rate, snapshots, marks.

The feed thread calls ``Venue.advance`` every few milliseconds; the clock here
tells the venue how many step messages each symbol owes since the last call
and whether its periodic snapshot and mark are due. It also keeps when each
symbol next owes anything, so that a tick costs a comparison per idle symbol:
with hundreds of symbols at a few messages a second most are idle at any tick.
Owing is linear in time, so skipping a symbol until then changes nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)
TICK_S = 0.005


@dataclass(frozen=True, slots=True)
class Due:
    """What a symbol owes at this advance: step messages, their time step, periodic ones."""

    messages: int
    step_s: float
    snapshot: bool
    mark: bool


class FeedClock:
    """Per symbol: message credit from its rate, and when its snapshot and mark are due."""

    def __init__(self, snapshot_interval_s: float, mark_interval_s: float) -> None:
        self.snapshot_interval_s = snapshot_interval_s
        self.mark_interval_s = mark_interval_s
        self.last: dict[str, float] = {}
        self.credit: dict[str, float] = {}
        self.next_snapshot: dict[str, float] = {}
        self.next_mark: dict[str, float] = {}
        self.unwalked: dict[str, float] = {}
        self.wakes: dict[str, float] = {}  # when each symbol next owes something

    def pause(self, symbol: str) -> None:
        """Hold the symbol; when it runs again it starts with a snapshot."""
        self.last.pop(symbol, None)
        self.wakes.pop(symbol, None)

    def wake(self, symbol: str | None = None) -> None:
        """Look at ``symbol`` (every one when None) at the next tick: its rate or faults changed."""
        if symbol is None:
            self.wakes.clear()
        else:
            self.wakes.pop(symbol, None)

    def due_symbols(self, symbols: list[str], now: float) -> list[str]:
        """The symbols that may owe something at ``now``."""
        wakes = self.wakes
        return [s for s in symbols if wakes.get(s, now) <= now]

    def due(self, symbol: str, now: float, rate: float) -> Due:
        """What ``symbol`` owes at monotonic time ``now`` with ``rate`` messages a second."""
        last = self.last.get(symbol)
        self.last[symbol] = now
        if last is None:  # a new or resumed symbol starts with a snapshot
            self.credit[symbol] = self.unwalked[symbol] = 0.0
            self.next_snapshot[symbol] = self.next_mark[symbol] = now
            last = now
        credit = self.credit[symbol] + (now - last) * rate
        count = max(int(credit), 0)
        self.credit[symbol] = credit - count
        # The mid walks over all the time elapsed since its last step, however few steps.
        walked = self.unwalked[symbol] + now - last
        self.unwalked[symbol] = 0.0 if count else walked
        snapshot = now >= self.next_snapshot[symbol]
        if snapshot:
            self.next_snapshot[symbol] = now + self.snapshot_interval_s
        mark = now >= self.next_mark[symbol]
        if mark:
            self.next_mark[symbol] = now + self.mark_interval_s
        next_message = now + (1 - self.credit[symbol]) / rate if rate > 0 else now + 3600.0
        self.wakes[symbol] = min(next_message, self.next_snapshot[symbol], self.next_mark[symbol])
        return Due(count, walked / count if count else 0.0, snapshot, mark)

    def overspent(self, symbol: str, extra: int) -> None:
        """Charge messages sent beyond what was owed (a step can emit two) to the next call."""
        if extra > 0:
            self.credit[symbol] -= extra


class Advancing(Protocol):
    """What the feed thread drives."""

    def advance(self, now: float) -> int: ...


class FeedThread(threading.Thread):
    """Advances the venue's markets every few milliseconds until stopped."""

    def __init__(self, venue: Advancing) -> None:
        super().__init__(name="feed", daemon=True)
        self.venue = venue
        self._stop_event = threading.Event()

    def run(self) -> None:
        """Advance until ``stop``; an error is logged and the feed goes on."""
        while not self._stop_event.wait(TICK_S):
            try:
                self.venue.advance(time.monotonic())
            except Exception:
                log.exception("feed step failed")

    def stop(self) -> None:
        """Ask the thread to end after its current step."""
        self._stop_event.set()
