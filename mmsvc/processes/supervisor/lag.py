"""Kafka consumer lag in seconds, per partition and per topic (ARCHITECTURE D8).

While the consumer's position is behind the high watermark, lag is the age of
the oldest message not yet consumed, estimated by the timestamp of the last one
consumed. At the watermark it is zero. A partition that is behind and makes no
progress for the threshold counts as lagging too, so a stalled fetch never
reads as healthy. The trigger is armed only once every partition has caught up
after start-up, so replaying a backlog at boot does not kill the service.
Tansu's high watermark can trail the log, which under-reports lag, never over.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mmsvc.processes.supervisor.delivery import TopicPartition


@dataclass(slots=True)
class _PartitionLag:
    position: int = 0
    high: int = 0
    last_ts_ms: int = 0
    consumed_at: float = 0.0
    behind_since: float | None = None
    peak_age: float = 0.0  # oldest consumed message since the last check, in seconds
    high_known: bool = False

    def behind(self) -> bool:
        return self.high > self.position

    def lag_s(self, now: float) -> float:
        if not self.behind() or self.behind_since is None:
            return 0.0
        stalled = now - max(self.behind_since, self.consumed_at)
        # The last consumed timestamp estimates the oldest unconsumed one only
        # while working through a backlog; after an idle spell it would be stale.
        working = self.consumed_at >= self.behind_since
        by_ts = now - self.last_ts_ms / 1000.0 if working else 0.0
        return max(0.0, stalled, by_ts)


@dataclass(slots=True)
class LagTracker:
    """Per-partition lag from consumed timestamps and watermarks, with an arming rule."""

    threshold_s: float
    _parts: dict[TopicPartition, _PartitionLag] = field(default_factory=dict)
    armed: bool = False

    def consumed(self, tp: TopicPartition, offset: int, ts_ms: int, now: float) -> None:
        """Record a consumed message at wall-clock ``now`` (seconds)."""
        part = self._parts.setdefault(tp, _PartitionLag())
        part.position = max(part.position, offset + 1)
        part.last_ts_ms = ts_ms
        part.consumed_at = now
        # A backlog can be read in one batch between two checks: the age of what
        # was consumed is lag that really happened (issue 5: now - message ts).
        age = now - ts_ms / 1000.0
        part.peak_age = max(part.peak_age, age)
        if not part.behind():
            part.behind_since = None

    def watermark(
        self, tp: TopicPartition, high: int, now: float, *, from_end: bool = False
    ) -> None:
        """Record the partition's high watermark as last reported by the broker.

        ``from_end``: the partition was started at its end (market data, D15), so
        the first watermark seen is where consuming begins, not a backlog; a quiet
        partition with history would otherwise look stalled forever.
        """
        part = self._parts.setdefault(tp, _PartitionLag())
        if from_end and not part.high_known and part.position == 0:
            part.position = high
        part.high_known = True
        part.high = max(part.high, high)
        if part.behind() and part.behind_since is None:
            part.behind_since = now
        elif not part.behind():
            part.behind_since = None

    def lag_s(self, tp: TopicPartition, now: float) -> float:
        """Seconds of lag of one partition (0 at the watermark)."""
        part = self._parts.get(tp)
        return 0.0 if part is None else part.lag_s(now)

    def by_topic(self, now: float) -> dict[str, float]:
        """The worst lag of each topic, for the mm_kafka_lag_seconds gauge."""
        worst: dict[str, float] = {}
        for tp, part in self._parts.items():
            worst[tp[0]] = max(worst.get(tp[0], 0.0), part.lag_s(now), part.peak_age)
        return worst

    def breach(
        self, now: float, assigned: Iterable[TopicPartition]
    ) -> tuple[TopicPartition, float] | None:
        """The first partition over the threshold once armed, else None.

        Arms once every assigned partition has a known watermark and has caught
        up with it: a replay at start-up (a new group reads engine events from
        the earliest offset) is not lag.
        """
        if not self.armed:
            self.armed = self._caught_up(list(assigned))
            self._clear_peaks()
            return None
        found: tuple[TopicPartition, float] | None = None
        for tp, part in self._parts.items():
            lag = max(part.lag_s(now), part.peak_age)
            if lag > self.threshold_s and found is None:
                found = (tp, lag)
        self._clear_peaks()
        return found

    def _caught_up(self, assigned: list[TopicPartition]) -> bool:
        parts = [self._parts.get(tp) for tp in assigned]
        return bool(parts) and all(p is not None and p.high_known and not p.behind() for p in parts)

    def _clear_peaks(self) -> None:
        for part in self._parts.values():
            part.peak_age = 0.0

    def forget(self, tps: list[TopicPartition]) -> None:
        for tp in tps:
            self._parts.pop(tp, None)
