"""The supervisor's one Kafka consumer (ARCHITECTURE D15, D28, D32).

One consumer group (``KAFKA_GROUP_ID``) of one member per host. The group
assigns only ``engine.event.v1``, with the cooperative-sticky assignor (a
rebalance revokes only the partitions that move); the same partition numbers
of every other consumed topic are assigned by hand inside the same callbacks,
so a member holds whole partition numbers, and with them whole symbols (the
Python client has no custom assignors). Market data starts from the end at
start-up, because a fresh snapshot rebuilds the book and old ticks are worse
than none; ``engine.event.v1`` and ``md.instrument.*`` resume from committed
offsets (the earliest offset for a new group), so no fill or halt is missed.
Offsets are committed explicitly by the supervisor, only past what workers
acknowledged (D1).

D15 as amended here (issue 15): the order book topics start ``BOOK_REPLAY_S``
before the end instead of at it. Read from the end, a book waited for the
venue's next snapshot (every few seconds: 0-5 s on the dev stack, half of a
takeover's time beyond the group protocol); read from a little before, the
latest snapshot and the deltas after it rebuild the book at once. Nothing old
is traded on: a snapshot never rewinds a newer book (D12), the deltas after it
bring it to now, the worker's staleness rule still judges the result by its
last message, and the router holds all of it until the new worker says HELLO.
Trades and marks still start at the end: an old tick is worse than none.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from confluent_kafka import (
    OFFSET_END,
    OFFSET_INVALID,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from mmsvc.adapters.kafka import topics
from mmsvc.config import KAFKA_SESSION_TIMEOUT_S

log = logging.getLogger(__name__)

PartitionsCallback = Callable[[list[tuple[str, int]]], None]
NumbersCallback = Callable[[list[int]], None]
FOLLOWERS: tuple[str, ...] = tuple(sorted(topics.CONSUMED - {topics.ENGINE_EVENTS}))
HeardCallback = Callable[[float], None]
STATS_INTERVAL_MS = 1000
# How long the broker may hold an empty fetch. With fetch.min.bytes=1 a real broker
# answers as soon as one message is there, so this bounds only the rate of empty
# fetches, never latency. The dev stack's Tansu (memory storage) scans a partition's
# stored batches on every fetch: at 5 ms a tailing consumer of partitions holding
# ~10k batches each kept it at 100% of a core and fetches stalled for minutes (a
# session's e2e tests missed fills; a quiet `make run` fired KAFKA_LAG after ~10
# min); at 50 ms it used ~12% and answered in ~20 ms (measured, session 3 notes).
FETCH_WAIT_MAX_MS = 50
# D28: a surviving member learns of a rebalance (a host died) on its next heartbeat.
# librdkafka's default (3 s) made a takeover wait up to 3 s more after the dead
# member's session expired; a heartbeat a second costs the broker next to nothing.
# Tansu notices a dead member on a survivor's heartbeat, so half a second here is up to
# half a second less of a takeover (measured: kill at .861, rebalance at the next beat).
HEARTBEAT_MAX_MS = 500
# D15 as amended (module docstring): the book topics start this far back at an
# assignment, more than a snapshot interval ("every few seconds", CONTRACTS.md).
BOOK_REPLAY_S = 10.0
BOOK_REPLAY_MAX_MESSAGES = 20_000
BOOK_TOPICS: frozenset[str] = frozenset({topics.ORDERBOOK_SNAPSHOT, topics.ORDERBOOK_DELTA})
# The offsets lookup runs inside the rebalance callback: bounded, and on failure the
# book topics start at the end as before.
OFFSETS_LOOKUP_TIMEOUT_S = 2.0


def broker_heard_at(stats_json: str, now: float) -> float | None:
    """Wall time the partition leaders last answered, from librdkafka statistics (``rxidle``).

    The oldest of the leaders' last receives: one silent leader is enough for
    its partitions' watermarks to go stale (ARCHITECTURE D8). None when unknown.
    """
    try:
        brokers = json.loads(stats_json).get("brokers", {})
        idles = [
            int(b["rxidle"])
            for b in brokers.values()
            if isinstance(b, dict) and b.get("toppars") and int(b.get("rxidle", -1)) >= 0
        ]
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return now - max(idles) / 1e6 if idles else None


def consumer_config(
    connection: Mapping[str, Any],
    group_id: str,
    *,
    session_timeout_s: float = KAFKA_SESSION_TIMEOUT_S,
    **overrides: Any,
) -> dict[str, Any]:
    """The consumer settings on ``connection`` (connection_config): manual commits,
    earliest for a new group, fetches answered as soon as a message is there, and the
    group's session timeout (KAFKA_SESSION_TIMEOUT) with heartbeats at least three times
    in it and at least every second (HEARTBEAT_MAX_MS)."""
    session_ms = round(session_timeout_s * 1000)
    return {
        **connection,
        "group.id": group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": session_ms,
        "heartbeat.interval.ms": min(HEARTBEAT_MAX_MS, max(1, session_ms // 3)),
        "partition.assignment.strategy": "cooperative-sticky",  # D32
        "fetch.wait.max.ms": FETCH_WAIT_MAX_MS,
        "fetch.min.bytes": 1,
        "queued.min.messages": 20000,
        # With the 1 s default, a full local queue stops fetching for a whole second:
        # catching up on a backlog (a stall, a new group's replay) would crawl.
        "fetch.queue.backoff.ms": 10,
        **overrides,
    }


def _commit_answered(error: KafkaError | None, partitions: list[TopicPartition]) -> None:
    """librdkafka's answer to an asynchronous commit (served by poll)."""
    if error is not None:
        log.warning("offset commit failed", extra={"error": str(error), "count": len(partitions)})


class MarketConsumer:
    """Wraps a confluent-kafka Consumer with the offset policy of D15 and the membership of D28.

    ``on_assigned`` runs inside the rebalance callback before the gained
    partition numbers are fetched (the supervisor starts their workers);
    ``on_revoking`` runs before the revoked or lost numbers are let go (it stops
    their workers and commits what they acknowledged); ``on_revoke`` then hears
    every (topic, partition) that went.
    """

    market_data_from_end = True  # D15; a benchmark replays from the start instead

    def __init__(
        self,
        config: Mapping[str, Any],
        on_revoke: PartitionsCallback | None = None,
        on_broker_heard: HeardCallback | None = None,
        *,
        on_assigned: NumbersCallback | None = None,
        on_revoking: NumbersCallback | None = None,
        book_replay_s: float = BOOK_REPLAY_S,
    ) -> None:
        settings = dict(config)
        if on_broker_heard is not None:
            # Broker liveness for the lag rule: a stalled fetch never reads as healthy (D8).
            def stats(stats_json: str) -> None:
                heard = broker_heard_at(stats_json, time.time())
                if heard is not None:
                    on_broker_heard(heard)

            settings.setdefault("statistics.interval.ms", STATS_INTERVAL_MS)
            settings["stats_cb"] = stats
        settings["on_commit"] = _commit_answered
        self._consumer = Consumer(settings)
        self._on_revoke = on_revoke
        self._on_assigned = on_assigned
        self._on_revoking = on_revoking
        self._book_replay_s = book_replay_s
        self.assignment: list[tuple[str, int]] = []
        self.joined = False  # True from the group's first assignment to this member on
        # Where each assigned partition started, where this member chose it (a commit,
        # a replay's offset): its position until a message of it arrives.
        self._starts: dict[tuple[str, int], int] = {}
        self._consumer.subscribe(
            [topics.ENGINE_EVENTS],
            on_assign=self._assigned,
            on_revoke=self._revoked,
            on_lost=self._revoked,  # a lost session: the numbers are gone all the same
        )

    @property
    def numbers(self) -> list[int]:
        """The partition numbers this member holds (of every consumed topic)."""
        return sorted({p for t, p in self.assignment if t == topics.ENGINE_EVENTS})

    def _whole(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        """The group's engine.event partitions plus the same numbers of every other topic."""
        numbers = [tp.partition for tp in partitions]
        followers = [TopicPartition(t, n) for t in FOLLOWERS for n in numbers]
        for tp in followers:
            if tp.topic in topics.MARKET_DATA and self.market_data_from_end:
                tp.offset = OFFSET_END
        return list(partitions) + followers

    def _replay_books(self, consumer: Consumer, whole: list[TopicPartition]) -> None:
        """Start the book topics ``book_replay_s`` back (D15 as amended), else at the end."""
        books = [tp for tp in whole if tp.topic in BOOK_TOPICS and tp.offset == OFFSET_END]
        if not books:
            return
        since_ms = int((time.time() - self._book_replay_s) * 1000)
        wanted = [TopicPartition(tp.topic, tp.partition, since_ms) for tp in books]
        try:
            found = consumer.offsets_for_times(wanted, timeout=OFFSETS_LOOKUP_TIMEOUT_S)
        except KafkaException as exc:
            log.warning(
                "book replay offsets unknown; books start at the end", extra={"error": str(exc)}
            )
            return
        offsets = {(f.topic, f.partition): f.offset for f in found if f.error is None}
        for tp in books:
            offset = offsets.get((tp.topic, tp.partition), -1)
            if offset >= 0 and self._replay_is_short(consumer, tp, offset):
                tp.offset = offset  # else (-1: nothing that recent) the end it is

    @staticmethod
    def _replay_is_short(consumer: Consumer, tp: TopicPartition, offset: int) -> bool:
        """At most BOOK_REPLAY_MAX_MESSAGES from ``offset`` to the end.

        Apache Kafka answers -1 when no record is that recent; the dev stack's Tansu
        answers 0, which would replay a quiet partition's whole history (measured).
        Nothing old would be quoted on (the worker judges a book by its own ts_ms),
        but it would be read; a bound keeps that to a few seconds' worth.
        """
        try:
            _, high = consumer.get_watermark_offsets(tp, timeout=OFFSETS_LOOKUP_TIMEOUT_S)
        except KafkaException:
            return False
        return bool(high - offset <= BOOK_REPLAY_MAX_MESSAGES)

    @staticmethod
    def _resume_committed(consumer: Consumer, whole: list[TopicPartition]) -> None:
        """Start the partitions that resume from the group's commits at those offsets, explicitly.

        librdkafka would look the commits up itself, but then nothing tells this member
        where a partition resumed until a message arrives (``position()`` is the offset
        after the last message delivered): resumed at its end, a partition says nothing,
        and the lag trigger waited for it for ever after a supervisor restart (fresh11).
        One lookup for all of them; on failure librdkafka resumes them as before.
        """
        resumed = [tp for tp in whole if tp.offset == OFFSET_INVALID]
        if not resumed:
            return
        try:
            found = consumer.committed(resumed, timeout=OFFSETS_LOOKUP_TIMEOUT_S)
        except KafkaException as exc:
            log.warning("committed offsets unknown at assignment", extra={"error": str(exc)})
            return
        offsets = {(f.topic, f.partition): f.offset for f in found if f.error is None}
        for tp in resumed:
            tp.offset = offsets.get((tp.topic, tp.partition), OFFSET_INVALID)

    def _assigned(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = sorted(tp.partition for tp in partitions)
        self.joined = True
        if self._on_assigned is not None:
            self._on_assigned(numbers)  # even none: the member has joined
        whole = self._whole(partitions)
        self._resume_committed(consumer, whole)
        self._replay_books(consumer, whole)
        consumer.incremental_assign(whole)
        self.assignment += [(tp.topic, tp.partition) for tp in whole]
        self._starts.update({(tp.topic, tp.partition): tp.offset for tp in whole if tp.offset >= 0})
        log.info("partitions assigned", extra={"detail": f"numbers {numbers}, now {self.numbers}"})

    def _revoked(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        numbers = sorted(tp.partition for tp in partitions)
        if self._on_revoking is not None and numbers:
            self._on_revoking(numbers)
        whole = self._whole(partitions)
        revoked = [(tp.topic, tp.partition) for tp in whole]
        if self._on_revoke is not None:
            self._on_revoke(revoked)
        gone = set(revoked)
        self.assignment = [tp for tp in self.assignment if tp not in gone]
        for tp in gone:
            self._starts.pop(tp, None)
        consumer.incremental_unassign(whole)
        log.info("partitions revoked", extra={"detail": f"numbers {numbers}, now {self.numbers}"})

    def partition_counts(self, names: Iterable[str], timeout_s: float = 10.0) -> dict[str, int]:
        """Each topic's partition count from the broker's metadata (0: missing)."""
        listed = self._consumer.list_topics(timeout=timeout_s).topics
        counts: dict[str, int] = {}
        for name in names:
            meta = listed.get(name)
            counts[name] = 0 if meta is None or meta.error is not None else len(meta.partitions)
        return counts

    def poll(self, max_messages: int, timeout_s: float) -> list[Message]:
        """Up to ``max_messages`` messages, returning as soon as any are ready.

        ``consume(n, timeout)`` waits for a full batch or the whole timeout, which
        would add its timeout to every tick's latency; so take what is ready at
        once, and only when nothing is, block in ``poll`` for the first message.
        """
        messages = self._consumer.consume(max_messages, 0)
        if not messages:
            first = self._consumer.poll(timeout_s)
            messages = [] if first is None else [first]
        good: list[Message] = []
        for message in messages:
            error = message.error()
            if error is None:
                good.append(message)
            elif error.code() != KafkaError._PARTITION_EOF:
                log.error("kafka consume error", extra={"error": str(error)})
        return good

    def commit(self, offsets: Mapping[tuple[str, int], int], *, wait: bool = False) -> bool:
        """Commit the given next-offsets; False when refused at once.

        Asynchronous unless ``wait`` (shutdown): a broker that stops answering
        (SIGSTOP, a network partition) holds a synchronous commit until its socket
        times out, and a supervisor blocked there sends no heartbeat (its workers
        exit) and never runs the lag rule (D8, D25). A commit that fails later is
        logged and only means a longer replay after a crash (fills are
        de-duplicated: D1); the partition's next commit carries it forward.
        """
        if not offsets:
            return True
        partitions = [TopicPartition(t, p, o) for (t, p), o in offsets.items()]
        try:
            if wait:
                self._consumer.commit(offsets=partitions, asynchronous=False)
            else:
                self._consumer.commit(offsets=partitions, asynchronous=True)
        except Exception:  # a commit failure only means a longer replay later
            log.warning("offset commit failed", exc_info=True)
            return False
        return True

    def high_watermark(self, topic: str, partition: int) -> int | None:
        """The last high watermark seen in fetch responses (no broker round trip)."""
        try:
            _, high = self._consumer.get_watermark_offsets(
                TopicPartition(topic, partition), cached=True
            )
        except Exception:  # noqa: BLE001 - advisory: any failure reads as "unknown", never a crash
            return None
        return None if high < 0 else int(high)

    def positions(self, partitions: Iterable[tuple[str, int]]) -> dict[tuple[str, int], int]:
        """The next offset each partition will deliver (no broker round trip), where known.

        Before its first message a partition resumed from a committed offset is at
        that offset (``_resume_committed``): the only way to know it is caught up when
        nothing new came (D8). librdkafka's own position counts delivered messages only.
        """
        wanted = [TopicPartition(t, p) for t, p in partitions]
        if not wanted:
            return {}
        known = {tp: self._starts[tp] for tp in partitions if tp in self._starts}
        try:
            found = self._consumer.position(wanted)
        except Exception:  # noqa: BLE001 - advisory: any failure reads as "unknown", never a crash
            return known
        known.update({(tp.topic, tp.partition): tp.offset for tp in found if tp.offset >= 0})
        return known

    def close(self) -> None:
        self._consumer.close()
