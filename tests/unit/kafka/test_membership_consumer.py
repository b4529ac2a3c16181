"""The consumer's share of the group: whole partition numbers of every consumed topic (D28, D32)."""

from __future__ import annotations

from typing import Any

from confluent_kafka import OFFSET_END, OFFSET_INVALID, KafkaException, TopicPartition

from mmsvc.adapters.kafka import topics
from mmsvc.adapters.kafka.consumer import (
    BOOK_REPLAY_MAX_MESSAGES,
    BOOK_REPLAY_S,
    BOOK_TOPICS,
    MarketConsumer,
)

HIGH = 5_000  # every partition's end in these cases
RECENT = HIGH - 40  # the broker's answer for BOOK_REPLAY_S back


class FakeConsumer:
    """What the rebalance callbacks call on librdkafka's consumer, recorded in order."""

    def __init__(
        self,
        calls: list[tuple[str, Any]],
        recent: int | None = RECENT,
        commits: dict[str, int] | None = None,
        *,
        commits_unknown: bool = False,  # the commits lookup fails
    ) -> None:
        self.calls = calls
        self.recent = recent  # None: the lookup fails
        self.commits = commits or {}
        self.commits_unknown = commits_unknown

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        assert timeout > 0  # inside the rebalance callback: always bounded
        if self.commits_unknown:
            raise KafkaException("coordinator gone")
        self.calls.append(("committed", sorted({tp.topic for tp in partitions})))
        return [
            TopicPartition(tp.topic, tp.partition, self.commits.get(tp.topic, OFFSET_INVALID))
            for tp in partitions
        ]

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, OFFSET_INVALID) for tp in partitions]

    def offsets_for_times(
        self, partitions: list[TopicPartition], timeout: float
    ) -> list[TopicPartition]:
        assert timeout > 0  # inside the rebalance callback: always bounded
        if self.recent is None:
            raise KafkaException("broker gone")
        self.calls.append(("lookup", [tp.offset for tp in partitions]))
        return [TopicPartition(tp.topic, tp.partition, self.recent) for tp in partitions]

    def get_watermark_offsets(self, tp: TopicPartition, timeout: float) -> tuple[int, int]:
        assert tp.topic in BOOK_TOPICS
        assert timeout > 0
        return 0, HIGH

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("assign", partitions))

    def incremental_unassign(self, partitions: list[TopicPartition]) -> None:
        self.calls.append(("unassign", partitions))


def member(calls: list[tuple[str, Any]]) -> MarketConsumer:
    """A MarketConsumer whose callbacks record into ``calls``, without a broker."""
    consumer = MarketConsumer.__new__(MarketConsumer)
    consumer._on_assigned = lambda numbers: calls.append(("started", numbers))
    consumer._on_revoking = lambda numbers: calls.append(("stopped", numbers))
    consumer._on_revoke = lambda gone: calls.append(("forgot", sorted(gone)))
    consumer.assignment = []
    consumer._starts = {}
    consumer._book_replay_s = BOOK_REPLAY_S
    return consumer


def starts(fake: FakeConsumer) -> dict[str, int]:
    """Where each consumed topic of number 4 starts after its assignment."""
    consumer = member(fake.calls)
    consumer._assigned(fake, [TopicPartition(topics.ENGINE_EVENTS, 4)])  # type: ignore[arg-type]
    [assigned] = [arg for kind, arg in fake.calls if kind == "assign"]
    return {tp.topic: tp.offset for tp in assigned}


def test_an_assigned_number_brings_the_same_number_of_every_consumed_topic() -> None:
    calls: list[tuple[str, Any]] = []
    consumer = member(calls)
    consumer._assigned(FakeConsumer(calls), [TopicPartition(topics.ENGINE_EVENTS, 4)])  # type: ignore[arg-type]
    assert calls[0] == ("started", [4])  # the workers start before the numbers are fetched
    kind, assigned = calls[-1]
    assert kind == "assign"
    assert {(tp.topic, tp.partition) for tp in assigned} == {(t, 4) for t in topics.CONSUMED}
    assert consumer.numbers == [4]


def test_books_start_a_few_seconds_back_other_market_data_at_the_end() -> None:
    """D15 as amended: the latest snapshot and its deltas at once; money from commits."""
    offsets = starts(FakeConsumer([]))
    for topic in topics.CONSUMED:
        if topic in BOOK_TOPICS:
            assert offsets[topic] == RECENT
        elif topic in topics.MARKET_DATA:
            assert offsets[topic] == OFFSET_END
        else:
            assert offsets[topic] < 0  # the committed offset (librdkafka's INVALID)
            assert offsets[topic] != OFFSET_END


def test_books_start_at_the_end_when_the_lookup_fails_or_would_read_too_much() -> None:
    for fake in (
        FakeConsumer([], recent=None),  # the broker did not answer in time
        FakeConsumer([], recent=-1),  # nothing that recent (Apache Kafka)
        FakeConsumer([], recent=HIGH - BOOK_REPLAY_MAX_MESSAGES - 1),  # Tansu's 0, say
    ):
        offsets = starts(fake)
        assert all(offsets[topic] == OFFSET_END for topic in BOOK_TOPICS)


def test_a_revoked_number_stops_its_workers_before_it_is_let_go() -> None:
    calls: list[tuple[str, Any]] = []
    consumer = member(calls)
    fake = FakeConsumer(calls)
    consumer._assigned(fake, [TopicPartition(topics.ENGINE_EVENTS, n) for n in (1, 4)])  # type: ignore[arg-type]
    calls.clear()
    consumer._revoked(fake, [TopicPartition(topics.ENGINE_EVENTS, 4)])  # type: ignore[arg-type]
    assert [kind for kind, _ in calls] == ["stopped", "forgot", "unassign"]
    assert calls[0][1] == [4]
    assert {(tp.topic, tp.partition) for tp in calls[2][1]} == {(t, 4) for t in topics.CONSUMED}
    assert consumer.numbers == [1]
    assert {p for _, p in consumer.assignment} == {1}


def test_a_partition_resumed_from_a_commit_starts_there_and_knows_it_before_any_message() -> None:
    """fresh11: resumed at its end, a partition delivers nothing, and librdkafka's position
    counts delivered messages only, so the lag trigger waited for it for ever (D8)."""
    fake = FakeConsumer([], commits={topics.ENGINE_EVENTS: 143, topics.INSTRUMENT_HALT: 7})
    consumer = member(fake.calls)
    consumer._consumer = fake  # type: ignore[assignment]
    consumer._assigned(fake, [TopicPartition(topics.ENGINE_EVENTS, 4)])  # type: ignore[arg-type]
    [lookup] = [arg for kind, arg in fake.calls if kind == "committed"]
    assert set(lookup) == topics.CONSUMED - topics.MARKET_DATA  # one lookup, money and lifecycle
    [assigned] = [arg for kind, arg in fake.calls if kind == "assign"]
    offsets = {tp.topic: tp.offset for tp in assigned}
    assert offsets[topics.ENGINE_EVENTS] == 143
    assert offsets[topics.INSTRUMENT_HALT] == 7
    assert offsets[topics.INSTRUMENT_RESUME] == OFFSET_INVALID  # never committed: earliest
    known = consumer.positions(consumer.assignment)
    assert known[(topics.ENGINE_EVENTS, 4)] == 143
    assert known[(topics.INSTRUMENT_HALT, 4)] == 7
    assert (topics.INSTRUMENT_RESUME, 4) not in known


def test_a_failed_commit_lookup_leaves_the_resume_to_librdkafka() -> None:
    offsets = starts(FakeConsumer([], commits_unknown=True))
    for topic in topics.CONSUMED - topics.MARKET_DATA:
        assert offsets[topic] == OFFSET_INVALID
