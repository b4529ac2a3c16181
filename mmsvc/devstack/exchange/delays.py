"""A delay line for the venue's engine events: each held back a while, all kept in order.

The ``engine_event_delay_ms`` fault (faults.py) routes engine.event.v1 records
through here. One first-in first-out line for every symbol: a record is never
released before one queued earlier, even when the delay is shortened or
cleared meanwhile, so events stay in the order they happened on the topic and
per symbol; only their distance behind the HTTP answers grows.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Protocol

Record = dict[str, Any]


class Sink(Protocol):
    """Where the venue's Kafka records go, in order: keyed by symbol."""

    def put(self, topic: str, key: str, record: Record) -> None: ...


class DelayLine:
    """Hands records on to a sink after their delay, in the order they were put."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self._items: deque[tuple[float, str, str, Record]] = deque()
        self._ready = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False

    def put(self, topic: str, key: str, record: Record, delay_s: float) -> None:
        """Pass ``record`` on after ``delay_s``, never before one put earlier."""
        with self._ready:
            if delay_s <= 0 and not self._items:
                self.sink.put(topic, key, record)  # nothing queued that it could overtake
                return
            due = time.monotonic() + max(delay_s, 0.0)
            if self._items:
                due = max(due, self._items[-1][0])
            self._items.append((due, topic, key, record))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="event-delay", daemon=True)
                self._thread.start()
            self._ready.notify()

    @property
    def held(self) -> int:
        """How many records wait in the line now."""
        with self._ready:
            return len(self._items)

    def close(self, timeout_s: float = 2.0) -> None:
        """Release everything still held at once (the simulator is stopping)."""
        with self._ready:
            self._closing = True
            self._ready.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout_s)

    def _run(self) -> None:
        # The sink is fed under the line's own lock (its put never blocks), so a
        # record put with no delay just after the line emptied cannot overtake.
        with self._ready:
            while True:
                now = time.monotonic()
                while self._items and (self._closing or self._items[0][0] <= now):
                    _due, topic, key, record = self._items.popleft()
                    self.sink.put(topic, key, record)
                if self._closing:
                    return
                self._ready.wait(self._items[0][0] - now if self._items else None)
