"""A member starts the book topics a few seconds back, everything else as before (D15 amended).

Read from the end, a symbol taken over waited for the venue's next snapshot
(0-5 s on the dev stack) before it could quote; from ``BOOK_REPLAY_S`` back,
the latest snapshot and the deltas after it are there at once. Older book data
and every trade or mark from before the assignment stay unread.
"""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Message, Producer

from mmsvc.adapters.kafka import topics
from mmsvc.adapters.kafka.consumer import MarketConsumer, consumer_config
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.integration

REPLAY_S = 1.0  # the member's window here; BOOK_REPLAY_S in the service


def test_an_assignment_replays_the_recent_book_and_nothing_older(kafka_bootstrap: str) -> None:
    key = f"REPLAY{uuid.uuid4().hex[:8].upper()}".encode()
    producer = Producer({"bootstrap.servers": kafka_bootstrap})

    def send(topic: str, value: bytes) -> None:
        producer.produce(topic, key=key, value=value, partition=0)
        producer.flush(10)

    send(topics.ORDERBOOK_SNAPSHOT, b"old-snap")
    time.sleep(REPLAY_S * 2)  # deliberate: the old snapshot must be older than the window
    send(topics.TRADES, b"recent-trade")
    send(topics.MARK, b"recent-mark")
    config = consumer_config({"bootstrap.servers": kafka_bootstrap}, uuid.uuid4().hex)
    member = MarketConsumer(config, book_replay_s=REPLAY_S)
    got: list[tuple[str | None, bytes | None]] = []

    def received(*values: bytes) -> bool:
        # The venue's book goes on until the member joins: whenever the assignment comes,
        # a snapshot and a delta sent before it fall inside its window (read from the end,
        # none would be read), and the old snapshot outside it.
        if not member.joined:
            send(topics.ORDERBOOK_SNAPSHOT, b"recent-snap")
            send(topics.ORDERBOOK_DELTA, b"recent-delta")
        batch: list[Message] = member.poll(500, 0.2)
        got.extend((m.topic(), m.value()) for m in batch if m.key() == key)
        return {v for _, v in got} >= set(values)

    try:
        wait_for(
            lambda: received(b"recent-snap", b"recent-delta"),
            timeout=30,
            what="the recent snapshot and delta",
        )
        send(topics.TRADES, b"live-trade")
        wait_for(
            lambda: received(b"live-trade"),
            timeout=30,
            what="a trade sent after the assignment",
        )
    finally:
        member.close()
    values = [v for _, v in got]
    assert b"old-snap" not in values
    assert b"recent-trade" not in values  # trades and marks start at the end (D15)
    assert b"recent-mark" not in values
