"""When an idle worker's loop has something to do (issue 13: the CPU of an idle symbol).

Two hundred workers share a host, so a quiet symbol must cost little: its
loop sleeps until the next thing that is due, and what it writes without a
reason is spaced out. Each rule here keeps what it guards:

* The live status (Redis, for operators) is written at once, though at most
  every ``STATUS_MIN_S``, when what an operator acts on changes (state,
  triggers, orders, position: `status_key`); prices, P&L and ages are
  refreshed by a keepalive every ``STATUS_KEEPALIVE_S``, well inside the
  status's TTL. A kill writes it at once (the kill switch's ``on_change``).
* The heartbeat to the supervisor is a keepalive: any frame the worker sends
  (an ack, a reply) tells the supervisor it lives, so a heartbeat goes only
  after ``HEARTBEAT_S`` without one. The supervisor's silence rule
  (``WORKER_SILENT_S``, 10 s) is ten keepalives: a worker paused past its lease
  (a stopped process, a long GC) must still wake up before it and find itself
  fenced out (D26), as it did with a heartbeat every 0.5 s.
* Nothing else waits on a timer of its own: the lease renewal is due about
  every second (D26: it also carries the kill flag, D30, and the dead-letter
  hold, D31), decisions every ``quote_interval_ms`` (staleness fires on that
  timer, D13), and the loop never sleeps longer than ``MAX_SLEEP_MS``.

Time is a monotonic clock in seconds, injected so the rules are tested
without a wall clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from mmsvc.domain.trader import SymbolTrader

STATUS_MIN_S: Final = 0.25
STATUS_KEEPALIVE_S: Final = 1.0
HEARTBEAT_S: Final = 1.0
# The loop's longest sleep: what has no deadline of its own (answers of the
# Order Service's background requests, chases, reconciliation, outage retries)
# is looked at this often at least.
MAX_SLEEP_MS: Final = 100

StatusKey = tuple[object, ...]


def status_key(trader: SymbolTrader) -> StatusKey:
    """What an operator acts on in the live status; a change of it is written at once."""
    inventory = trader.inventory
    return (
        trader.state,
        tuple(trader.triggers),
        trader.instrument,
        trader.book.is_known,
        None if inventory is None else (inventory.quantity, inventory.realized_pnl),
        tuple(trader.orders.values()),
    )


class StatusCadence:
    """Writes the live status on a change (at most every `min_s`) or every `keepalive_s`."""

    def __init__(
        self,
        *,
        min_s: float = STATUS_MIN_S,
        keepalive_s: float = STATUS_KEEPALIVE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._min_s, self._keepalive_s, self._clock = min_s, keepalive_s, clock
        self._written_at = float("-inf")
        self._written: StatusKey | None = None
        self._changed = False

    def due(self, key: StatusKey) -> bool:
        """True when the status should be written now; a change too soon waits for `min_s`."""
        now = self._clock()
        self._changed = key != self._written
        if now >= self._written_at + self._keepalive_s:
            return True
        return self._changed and now >= self._written_at + self._min_s

    def written(self, key: StatusKey) -> None:
        """The status of `key` was just written (by this cadence or at once, as a kill's)."""
        self._written_at, self._written, self._changed = self._clock(), key, False

    def next_due(self) -> float:
        """When the status is next due, as last judged by `due` (a pending change: sooner)."""
        return self._written_at + (self._min_s if self._changed else self._keepalive_s)


class Keepalive:
    """A heartbeat sent only after `interval_s` without any other frame."""

    def __init__(
        self, interval_s: float = HEARTBEAT_S, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._interval_s, self._clock = interval_s, clock
        self._sent_at = float("-inf")

    def sent(self) -> None:
        """A frame just went to the supervisor: it knows we live."""
        self._sent_at = self._clock()

    def due(self) -> bool:
        return self._clock() >= self.next_due()

    def next_due(self) -> float:
        return self._sent_at + self._interval_s


def sleep_ms(now: float, due: float, *, cap_ms: int = MAX_SLEEP_MS) -> int:
    """Milliseconds to sleep from `now` until `due` (monotonic seconds), within [1, cap_ms]."""
    left_s = due - now  # +inf when nothing is due, -inf when due since forever
    if left_s >= cap_ms / 1000:
        return cap_ms
    if left_s <= 0:
        return 1  # overdue; -inf has no int (a shadow worker crash-looped on it)
    return max(1, int(left_s * 1000) + 1)  # + 1: never wake just before the timer
