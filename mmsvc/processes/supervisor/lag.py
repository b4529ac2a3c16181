"""Kafka consumer lag in seconds, per partition and per topic (ARCHITECTURE D8).

Lag is how far the consumer is behind the log, never how old an event's own
timestamp is. A record's timestamp is set by its producer (CreateTime), so its
age also counts time spent before the record reached the broker: a producer
that queued it, a broker slow to append, or a producer that stamps records
with an event time in the past. None of that is the consumer being behind.

So every age taken from a timestamp is capped by evidence from the broker: the
time since the consumer was last known to be at the high watermark. Nothing
unconsumed can have waited in the log longer than that. "Known" means a
watermark check that found the position at the watermark, as fresh as the last
answer received from the broker (librdkafka's ``rxidle``): a consumer whose
process was stopped, or whose broker went silent, knows nothing new.

* At the watermark (and the broker answering): 0.
* Behind it: now - ts of the oldest unconsumed message, estimated with the last
  consumed one (D8), capped as above; and at least the time the partition has
  been behind with no progress, so a stalled fetch never reads as healthy.
* A backlog read whole between two checks still counts: the first message of
  each consumed batch is the oldest that was waiting, and its capped age is
  kept until the next check.
* Broker silent for longer than ``silent_s``: the time since we last knew we
  were caught up (the watermark cannot be trusted, D29's stopped broker).

The trigger is armed only once every assigned partition has caught up after
start-up, so replaying a backlog at boot does not kill the service. Tansu's
high watermark can trail the log, which under-reports lag, never over.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from mmsvc.config import KAFKA_SESSION_TIMEOUT_S
from mmsvc.processes.supervisor.delivery import TopicPartition

# How long the broker may send nothing before the watermark counts as unknown.
# A healthy fetch long-poll answers every few milliseconds.
BROKER_SILENT_S = 3.0
# A consume loop that did not run for this long (the process stopped, or blocked)
# trusts no cached watermark for BLIND_S after: the cache is as old as the gap.
LOOP_GAP_S = 0.5
BLIND_S = 1.0
# A loop that did not run for longer than the group's session timeout (the consumer's
# session.timeout.ms: a host stopped or cut off) was expelled from the group, which
# gave its partitions to other members: those judge their lag now. What this member
# measures on resume is its backlog of partitions it no longer holds, not the
# deployment's lag: it starts again as after an assignment (armed once caught up).
# Found by the chaos run (issue 15): a host resumed after a 10 s SIGSTOP raised a
# global KAFKA_LAG kill that halted every symbol on every host. The supervisor passes
# its KAFKA_SESSION_TIMEOUT as ``expelled_after_s``.
# After any gap, "caught up" needs evidence from after the resume: a broker answer
# heard since then. The third chaos run's woken host read its cached watermark with the
# broker last heard before the stop, took that as "caught up 10 s ago" for partitions it
# had just forgotten, armed, and judged the first fresh watermark a 10.3 s lag.


@dataclass(slots=True)
class _PartitionLag:
    position: int = 0  # the next offset to consume
    high: int = 0
    high_known: bool = False
    last_ts_ms: int = 0
    progress_at: float = 0.0  # when the position last advanced (wall seconds)
    behind_since: float | None = None  # first check that found the position behind
    caught_up_at: float | None = None  # last time the position was known at the watermark
    backlog_s: float = 0.0  # capped age of what was consumed since the last check
    seen_at: float = 0.0  # when the tracker first saw it (its assignment): nothing older counts

    def behind(self) -> bool:
        return self.high_known and self.high > self.position

    def cap(self, now: float) -> float:
        """The longest anything unconsumed can have waited: since we were last caught up."""
        since = self.caught_up_at if self.caught_up_at is not None else self.progress_at
        return max(0.0, now - since)

    def lag_s(self, now: float, broker_silent_s: float, silent_limit_s: float) -> float:
        if not self.behind():
            if broker_silent_s > silent_limit_s and self.caught_up_at is not None:
                return self.cap(now)
            return 0.0
        since = self.behind_since if self.behind_since is not None else now
        stalled = now - max(since, self.progress_at)
        by_ts = min(now - self.last_ts_ms / 1000.0, self.cap(now))
        return max(0.0, stalled, by_ts)


@dataclass(slots=True)
class LagTracker:
    """Per-partition lag from consumed positions, watermarks and broker liveness (D8)."""

    threshold_s: float
    silent_limit_s: float = BROKER_SILENT_S
    expelled_after_s: float = KAFKA_SESSION_TIMEOUT_S
    _parts: dict[TopicPartition, _PartitionLag] = field(default_factory=dict)
    _broker_heard_at: float | None = None  # wall time of the last broker answer, when known
    _polled_at: float | None = None
    _blind_until: float = 0.0
    _resumed_at: float = 0.0  # the end of the last loop gap: older evidence proves nothing
    armed: bool = False

    def polled(self, now: float) -> None:
        """The supervisor's loop ran at ``now`` (its consume call and its housekeeping both
        say so); after a gap, cached watermarks are not evidence.

        After a gap past the session timeout the member was expelled: forget every
        partition's history and disarm (``expelled_after_s``).
        """
        gap = 0.0 if self._polled_at is None else now - self._polled_at
        if gap > LOOP_GAP_S:
            self._blind_until = now + BLIND_S
            self._resumed_at = now
        if gap > self.expelled_after_s:
            self._parts.clear()
            self.armed = False
        self._polled_at = now

    def consumed(
        self, tp: TopicPartition, offset: int, first_ts_ms: int, last_ts_ms: int, now: float
    ) -> None:
        """Record a consumed batch of one partition: its last offset, first and last timestamps."""
        part = self._part(tp, now)
        if offset + 1 <= part.position:
            return  # a replay of what was already consumed: no progress
        if part.caught_up_at is not None:  # armed for this partition (D32: per partition)
            # The first message of the batch is the oldest that was waiting (Kafka order).
            waited = min(now - first_ts_ms / 1000.0, part.cap(now))
            part.backlog_s = max(part.backlog_s, waited)
        part.position = offset + 1
        part.last_ts_ms = last_ts_ms
        part.progress_at = now

    def _part(self, tp: TopicPartition, now: float) -> _PartitionLag:
        part = self._parts.get(tp)
        if part is None:
            part = self._parts[tp] = _PartitionLag(seen_at=now)
        return part

    def broker_heard(self, at: float) -> None:
        """The broker last answered at wall time ``at`` (librdkafka statistics' rxidle)."""
        self._broker_heard_at = at

    def watermark(
        self,
        tp: TopicPartition,
        high: int,
        now: float,
        *,
        from_end: bool = False,
        position: int | None = None,
    ) -> None:
        """Record the partition's high watermark as last reported by the broker.

        ``from_end``: the partition was started at its end (market data, D15), so
        the first watermark seen is where consuming begins, not a backlog; a quiet
        partition with history would otherwise look stalled forever.
        ``position``: the consumer's own next offset, where it knows it. A partition
        resumed from a committed offset with nothing new after it delivers no
        message, so only this says it is caught up; without it a supervisor restarted
        beside a quiet engine.event partition never armed the lag trigger (found by
        the e2e harness, which waits for the trigger to arm).
        """
        part = self._part(tp, now)
        if from_end and not part.high_known and part.position == 0:
            part.position = high
            part.progress_at = now
        if position is not None and position > part.position:
            part.position = position
            part.progress_at = now
        part.high_known = True
        part.high = max(part.high, high)
        if part.behind():
            if part.behind_since is None:
                part.behind_since = now
            return
        part.behind_since = None
        if now < self._blind_until:
            return  # a cached watermark, as old as the loop's gap
        # The watermark is only as fresh as the broker's last answer.
        heard = now if self._broker_heard_at is None else min(now, self._broker_heard_at)
        if heard < max(self._resumed_at, part.seen_at):
            # The broker has not answered since the gap, or since the assignment: no news
            # of the log. fresh24: a host that held no partition for 4 s (its statistics
            # skip brokers without partitions) took its last answer as "caught up" for a
            # book partition assigned again, and its 10 s replay (D15) read as 4.8 s of lag.
            return
        part.caught_up_at = max(heard, part.caught_up_at or 0.0)

    def lag_s(self, tp: TopicPartition, now: float) -> float:
        """Seconds of lag of one partition now (0 at the watermark)."""
        part = self._parts.get(tp)
        return 0.0 if part is None else part.lag_s(now, self._silent_s(now), self.silent_limit_s)

    def worst_s(self, now: float) -> float:
        """The worst lag of any partition now: what a reset's KAFKA_LAG check asks (D9, D23)."""
        return max((self.lag_s(tp, now) for tp in self._parts), default=0.0)

    def by_topic(self, now: float) -> dict[str, float]:
        """The worst lag of each topic, for the mm_kafka_lag_seconds gauge."""
        worst: dict[str, float] = {}
        silent = self._silent_s(now)
        for tp, part in self._parts.items():
            lag = max(part.lag_s(now, silent, self.silent_limit_s), part.backlog_s)
            worst[tp[0]] = max(worst.get(tp[0], 0.0), lag)
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
            self._clear_backlogs()
            return None
        found: tuple[TopicPartition, float] | None = None
        silent = self._silent_s(now)
        for tp, part in self._parts.items():
            if part.caught_up_at is None:
                continue  # not caught up since its assignment: a replay, not lag (D8, D32)
            lag = max(part.lag_s(now, silent, self.silent_limit_s), part.backlog_s)
            if lag > self.threshold_s and found is None:
                found = (tp, lag)
        self._clear_backlogs()
        return found

    def _silent_s(self, now: float) -> float:
        return 0.0 if self._broker_heard_at is None else max(0.0, now - self._broker_heard_at)

    def _caught_up(self, assigned: list[TopicPartition]) -> bool:
        return bool(assigned) and next(self._not_caught_up(assigned), None) is None

    def _not_caught_up(
        self, assigned: Iterable[TopicPartition]
    ) -> Iterator[tuple[TopicPartition, _PartitionLag | None]]:
        """Each assigned partition without a known watermark, or behind it."""
        for tp in assigned:
            part = self._parts.get(tp)
            if part is None or not part.high_known or part.behind():
                yield tp, part

    def waiting_for(self, assigned: Iterable[TopicPartition]) -> list[str]:
        """Why the trigger is not armed yet: each assigned partition not caught up, and how."""
        return [
            f"{tp[0]}[{tp[1]}] no watermark"
            if part is None or not part.high_known
            else f"{tp[0]}[{tp[1]}] at {part.position} of {part.high}"
            for tp, part in self._not_caught_up(assigned)
        ]

    def _clear_backlogs(self) -> None:
        for part in self._parts.values():
            part.backlog_s = 0.0

    def forget(self, tps: list[TopicPartition]) -> None:
        for tp in tps:
            self._parts.pop(tp, None)
