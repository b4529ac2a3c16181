"""The consumer's share of the group: whole partition numbers of every consumed topic (D28, D32)."""

from __future__ import annotations

from typing import Any

from confluent_kafka import OFFSET_END, TopicPartition

from mmsvc.adapters.kafka import topics
from mmsvc.adapters.kafka.consumer import MarketConsumer


class FakeConsumer:
    """What the rebalance callbacks call on librdkafka's consumer, recorded in order."""

    def __init__(self, calls: list[tuple[str, Any]]) -> None:
        self.calls = calls

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
    return consumer


def test_an_assigned_number_brings_the_same_number_of_every_consumed_topic() -> None:
    calls: list[tuple[str, Any]] = []
    consumer = member(calls)
    consumer._assigned(FakeConsumer(calls), [TopicPartition(topics.ENGINE_EVENTS, 4)])  # type: ignore[arg-type]
    assert calls[0] == ("started", [4])  # the workers start before the numbers are fetched
    kind, assigned = calls[1]
    assert kind == "assign"
    assert {(tp.topic, tp.partition) for tp in assigned} == {(t, 4) for t in topics.CONSUMED}
    for tp in assigned:  # D15: market data from the end, money and lifecycle from commits
        assert (tp.offset == OFFSET_END) == (tp.topic in topics.MARKET_DATA)
    assert consumer.numbers == [4]


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
