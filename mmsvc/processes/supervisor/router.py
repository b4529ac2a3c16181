"""Routes consumed Kafka messages to per-symbol workers by key (ARCHITECTURE D1, D14).

The router never decodes market data: the message key is the symbol, and the
value is forwarded untouched. A worker's PUSH socket holds at most 1000
messages (the spec's per-worker queue). When it is full:

* market data (`md.orderbook.*`, `md.trades.v1`, `md.mark.v1`) is shed and
  counted. A shed delta leaves a sequence gap, so the worker's book goes
  unknown until the next snapshot (D12) and its quotes are pulled: shedding
  can cost liquidity, never correctness.
* money and lifecycle messages (our `engine.event.v1`, `md.instrument.*`) wait
  in a per-worker buffer here, never dropped and never blocking other symbols,
  and stay tracked until the worker acknowledges them; a restarted worker gets
  every unacknowledged one again, in order.

Engine events of other accounts are dropped after reading only the leading
fields of the Avro body, which costs far less than decoding it (D14).

A worker that has not said HELLO yet (just started, or restarted) cannot take
messages: its queue would refuse them and the book data would be shed. Its
market data is held instead, the last ``WARMUP_MAX`` messages in Kafka order,
and sent from HELLO on, before anything newer. With the seconds the consumer
replays at an assignment (D15 as amended in adapters/kafka/consumer.py) that is
the latest snapshot and the deltas after it, so a worker taking a symbol over
quotes at once instead of waiting up to a snapshot interval (issue 15).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import zmq

from mmsvc.adapters.kafka import topics
from mmsvc.adapters.zmq.protocol import pack_data
from mmsvc.processes.supervisor.delivery import DeliveryId, DeliveryTracker
from mmsvc.processes.supervisor.lag import LagTracker

MARKET, MONEY, LIFECYCLE = "market", "money", "lifecycle"
# Market data held for a worker until its HELLO: a worker's queue (the spec's 1000).
WARMUP_MAX = 1000
_KIND = {
    **{t: MARKET for t in topics.MARKET_DATA},
    topics.ENGINE_EVENTS: MONEY,
    **{t: LIFECYCLE for t in topics.INSTRUMENT_LIFECYCLE},
}


class PushSocket(Protocol):
    """The part of a ZeroMQ PUSH socket the router uses."""

    def send(self, data: bytes, flags: int = ...) -> object: ...


# Plain send() with precomputed integer flags: pyzmq's send_multipart type-checks
# each frame and combines enum flags per call, which was the largest cost per
# message. A multipart message is queued whole once its first frame is accepted,
# so a full queue still refuses the message as a unit (zmq.Again on frame one).
_MORE = int(zmq.SNDMORE) | int(zmq.NOBLOCK)
_LAST = int(zmq.NOBLOCK)


def send_frames(push: PushSocket, frames: list[bytes]) -> None:
    """Queue one three-frame message without blocking; zmq.Again when the queue is full."""
    push.send(frames[0], _MORE)
    push.send(frames[1], _MORE)
    push.send(frames[2], _LAST)


@dataclass(slots=True)
class WorkerLink:
    """The supervisor's side of one worker: its queue and what it still owes an ack for."""

    symbol: str
    push: PushSocket
    pending: deque[DeliveryId] = field(default_factory=deque)
    unacked: dict[DeliveryId, list[bytes]] = field(default_factory=dict)
    # True from a worker's (re)start until its HELLO: market data waits in ``warmup``.
    warming: bool = False
    warmup: deque[list[bytes]] = field(default_factory=lambda: deque(maxlen=WARMUP_MAX))

    def flush(self) -> bool:
        """Send buffered must-deliver messages while the queue takes them; True when empty."""
        while self.pending:
            delivery = self.pending[0]
            frames = self.unacked.get(delivery)
            if frames is not None:
                try:
                    send_frames(self.push, frames)
                except zmq.Again:
                    return False
            self.pending.popleft()
        return True

    def resend_unacked(self) -> None:
        """Queue every unacknowledged message again, in Kafka order, for a new worker."""
        self.pending = deque(sorted(self.unacked))

    def restarting(self) -> None:
        """The worker died or is about to start: hold its market data until HELLO."""
        self.warming = True
        self.warmup.clear()

    def greeted(self) -> int:
        """The worker said HELLO: send what waited for it; how many went."""
        self.warming = False
        return self.flush_held()

    def flush_held(self) -> int:
        """Send held market data, in order, while the queue takes it; how many went.

        A HELLO can arrive before the worker's data connection is accepted (both
        are asynchronous): then nothing goes yet, and what is held keeps waiting,
        in order, for the next message or the housekeeping tick.
        """
        if self.warming:
            return 0
        sent = 0
        while self.warmup:
            try:
                send_frames(self.push, self.warmup[0])
            except zmq.Again:
                break
            self.warmup.popleft()
            sent += 1
        return sent


@dataclass(slots=True)
class Router:
    """Fans messages out to workers; counts every message it does not deliver, by reason."""

    account_id: str
    peek_account: Callable[[bytes], str | None]
    tracker: DeliveryTracker = field(default_factory=DeliveryTracker)
    links: dict[bytes, WorkerLink] = field(default_factory=dict)
    stats: Counter[str] = field(default_factory=Counter)
    _topic_bytes: dict[str, bytes] = field(default_factory=dict)

    def attach(self, link: WorkerLink) -> None:
        self.links[link.symbol.encode()] = link

    def detach(self, symbol: str) -> WorkerLink | None:
        return self.links.pop(symbol.encode(), None)

    def route(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        partition: int,
        offset: int,
        ts_ms: int,
    ) -> None:
        """Deliver, buffer, shed or drop one consumed message; never raises on any key or value."""
        kind = _KIND.get(topic)
        if kind is None:
            self.stats["dropped_unknown_topic"] += 1
            return
        if not isinstance(value, bytes):
            # A tombstone (null value) carries nothing to apply; a worker could not even
            # be sent it. Counted, like every message not delivered (D24).
            self.stats["dropped_null_value"] += 1
            return
        if kind is MARKET:
            self._route_market(topic, key, value, partition, offset, ts_ms)
            return
        # Offsets of messages not delivered are recorded per batch (route_batch).
        if kind is MONEY:
            account = self.peek_account(value)
            if account != self.account_id:
                reason = "dropped_other_account" if account is not None else "dropped_undecodable"
                self.stats[reason] += 1
                return
        link = self.links.get(key) if key is not None else None
        if link is None:
            self.stats["dropped_no_worker"] += 1
            return
        delivery = DeliveryId(topic, partition, offset)
        self.tracker.consumed(delivery, must_deliver=True)
        link.unacked[delivery] = pack_data(
            self._encoded(topic), value, partition, offset, ts_ms, True
        )
        link.pending.append(delivery)
        link.flush()
        self.stats["routed"] += 1

    def _route_market(
        self, topic: str, key: bytes | None, value: bytes, partition: int, offset: int, ts_ms: int
    ) -> None:
        link = self.links.get(key) if key is not None else None
        if link is None:
            self.stats["dropped_no_worker"] += 1
            return
        frames = pack_data(self._encoded(topic), value, partition, offset, ts_ms, False)
        if link.warming or link.warmup:  # one test on the hot path while nothing is held
            self.stats["routed"] += link.flush_held()  # nothing goes while warming
            if link.warming or link.warmup:  # held until the worker takes it, in order
                if len(link.warmup) == WARMUP_MAX:
                    self.stats["shed_held"] += 1  # the oldest goes
                link.warmup.append(frames)
                return
        if link.pending and not link.flush():
            self.stats["shed_queue_full"] += 1
            return
        try:
            send_frames(link.push, frames)
        except zmq.Again:
            self.stats["shed_queue_full"] += 1
            return
        self.stats["routed"] += 1

    def route_batch(self, messages: Iterable[Any], lag: LagTracker, now: float) -> None:
        """Route a consumed batch, then record each partition's progress once: the hot loop."""
        route = self.route
        spans: dict[
            tuple[str, int], list[int]
        ] = {}  # partition -> [last offset, first ts, last ts]
        for message in messages:
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            ts_ms = message.timestamp()[1]
            route(topic, message.key(), message.value(), partition, offset, ts_ms)
            span = spans.get((topic, partition))
            if span is None:
                spans[(topic, partition)] = [offset, ts_ms, ts_ms]
            else:
                span[0], span[2] = offset, ts_ms
        consumed = self.tracker.consumed
        lag.polled(now)
        for (topic, partition), (offset, first_ts, last_ts) in spans.items():
            consumed(DeliveryId(topic, partition, offset), must_deliver=False)
            lag.consumed((topic, partition), offset, first_ts, last_ts, now)

    def restarting(self, symbol: str) -> None:
        """A worker died: hold its market data for its successor's HELLO."""
        link = self.links.get(symbol.encode())
        if link is not None:
            link.restarting()

    def greeted(self, symbol: str) -> None:
        """A worker said HELLO: its unacknowledged messages again, then its held market data."""
        link = self.links.get(symbol.encode())
        if link is None:
            return
        link.resend_unacked()
        link.flush()
        self.stats["routed"] += link.greeted()

    def acknowledge(self, symbol: str, deliveries: Iterable[DeliveryId]) -> None:
        """A worker processed these must-deliver messages (a fill: its row is committed)."""
        link = self.links.get(symbol.encode())
        for delivery in deliveries:
            self.tracker.acknowledged(delivery)
            if link is not None:
                link.unacked.pop(delivery, None)

    def flush_all(self) -> None:
        """Retry every worker's buffered must-deliver messages, then its held market data."""
        for link in self.links.values():
            if link.pending:
                link.flush()
            if link.warmup and not link.pending:
                self.stats["routed"] += link.flush_held()  # nothing goes while warming

    def buffered(self) -> int:
        return sum(len(link.pending) for link in self.links.values())

    def _encoded(self, topic: str) -> bytes:
        encoded = self._topic_bytes.get(topic)
        if encoded is None:
            encoded = self._topic_bytes[topic] = topic.encode()
        return encoded
