"""A member resumed from committed offsets knows where it stands before any message (D8).

librdkafka's ``position()`` is the offset after the last message handed to the
application: a partition resumed from a committed offset with nothing new after
it has none. The supervisor's lag trigger arms only once every assigned
partition is known to be at its high watermark, so such a partition kept it
unarmed for ever after a supervisor restart (fresh9, fresh11: "engine.event.v1[1]
at 0 of 143" for 60 s, while nothing was behind). The member now asks the group
for its committed offsets at the assignment and starts there explicitly.
"""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Message, Producer

from mmsvc.adapters.kafka import topics
from mmsvc.adapters.kafka.consumer import MarketConsumer, consumer_config
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.integration

PARTITION = 2
EVENTS = 5


def _member(bootstrap: str, group: str) -> MarketConsumer:
    return MarketConsumer(consumer_config({"bootstrap.servers": bootstrap}, group))


def test_a_member_resumed_at_its_committed_end_knows_its_position(kafka_bootstrap: str) -> None:
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for n in range(EVENTS):
        producer.produce(topics.ENGINE_EVENTS, key=b"RESUME", value=b"%d" % n, partition=PARTITION)
    producer.flush(10)
    tp = (topics.ENGINE_EVENTS, PARTITION)
    group = uuid.uuid4().hex

    first = _member(kafka_bootstrap, group)
    last = -1
    try:

        def read_to_the_end() -> bool:
            nonlocal last
            for message in first.poll(500, 0.1):
                offset = message.offset()
                if (message.topic(), message.partition()) == tp and offset is not None:
                    last = offset
            high = first.high_watermark(*tp)
            return high is not None and last + 1 >= high >= EVENTS

        wait_for(read_to_the_end, 30, "the first member to read the partition")
        assert first.commit({tp: last + 1}, wait=True)
    finally:
        first.close()

    second = _member(kafka_bootstrap, group)
    try:
        delivered: list[Message] = []  # of the partition, after the commit

        def assigned() -> bool:
            batch = second.poll(500, 0.1)
            delivered.extend(m for m in batch if (m.topic(), m.partition()) == tp)
            return tp in second.assignment

        wait_for(assigned, 30, "the second member's assignment")
        # Known though nothing was delivered. Another test's service may still send an
        # event to this partition meanwhile (fresh12): then the position is past it.
        resumed_at = last + 1 if not delivered else (delivered[-1].offset() or 0) + 1
        assert second.positions([tp]) == {tp: resumed_at}
    finally:
        second.close()
