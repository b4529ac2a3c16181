"""Which offsets the supervisor may commit, given what workers acknowledged (ARCHITECTURE D1).

Money-bearing and lifecycle messages (`engine.event.v1` for our account,
`md.instrument.*`, control) must reach their worker. Each one stays *pending*
from the moment it is consumed until the worker acknowledges it (a fill once
its row is committed). A partition's committable offset is therefore the
lowest pending offset, or one past the last consumed offset when nothing is
pending. A crash of a worker or of the supervisor replays from there; fills
are de-duplicated by event_id, so a replay never double counts.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

TopicPartition = tuple[str, int]


@dataclass(frozen=True, slots=True, order=True)
class DeliveryId:
    """A message's place in Kafka, which is also its acknowledgement handle."""

    topic: str
    partition: int
    offset: int

    @property
    def tp(self) -> TopicPartition:
        return (self.topic, self.partition)


@dataclass(slots=True)
class DeliveryTracker:
    """Pending must-deliver messages per partition and the offsets safe to commit."""

    _pending: dict[TopicPartition, set[int]] = field(default_factory=lambda: defaultdict(set))
    _consumed: dict[TopicPartition, int] = field(default_factory=dict)
    _committed: dict[TopicPartition, int] = field(default_factory=dict)

    def consumed(self, delivery: DeliveryId, *, must_deliver: bool) -> None:
        """Record a consumed message; a must-deliver one stays pending until acked."""
        tp = delivery.tp
        if delivery.offset >= self._consumed.get(tp, -1):
            self._consumed[tp] = delivery.offset
        if must_deliver:
            self._pending[tp].add(delivery.offset)

    def acknowledged(self, delivery: DeliveryId) -> bool:
        """Mark a message delivered; False when it was not pending (a duplicate ack)."""
        pending = self._pending.get(delivery.tp)
        if pending is None or delivery.offset not in pending:
            return False
        pending.discard(delivery.offset)
        return True

    def is_pending(self, delivery: DeliveryId) -> bool:
        return delivery.offset in self._pending.get(delivery.tp, ())

    def committable(self) -> dict[TopicPartition, int]:
        """Offsets (next offset to read) that may be committed now and were not yet."""
        result: dict[TopicPartition, int] = {}
        for tp, last in self._consumed.items():
            pending = self._pending.get(tp)
            offset = min(pending) if pending else last + 1
            if offset > self._committed.get(tp, -1):
                result[tp] = offset
        return result

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        """Record offsets the broker confirmed as committed."""
        for tp, offset in offsets.items():
            self._committed[tp] = max(offset, self._committed.get(tp, -1))

    def forget(self, tps: list[TopicPartition]) -> None:
        """Drop state of partitions revoked from this consumer."""
        for tp in tps:
            self._pending.pop(tp, None)
            self._consumed.pop(tp, None)
            self._committed.pop(tp, None)

    def pending_count(self) -> int:
        return sum(len(offsets) for offsets in self._pending.values())
