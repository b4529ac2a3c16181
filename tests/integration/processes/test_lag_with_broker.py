"""D8 against the real broker: lag is the consumer behind the log, not an old timestamp.

Issue 12, scenario 10: a quiet service halted every symbol with KAFKA_LAG because
the lag rule took the age of a consumed record (from its producer's timestamp)
as lag. Here the supervisor's own consume-route-measure path (MarketConsumer,
Router.route_batch, LagTracker) reads a real broker while, from outside, engine
events of another account are produced with timestamps a minute old: a consumer
that keeps up must not breach. The control: the same path stopped for longer
than the threshold must breach.
"""

from __future__ import annotations

import struct
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import Producer

from mmsvc.adapters.kafka import topics
from mmsvc.adapters.kafka.codec import engine_event_account_id
from mmsvc.adapters.kafka.consumer import MarketConsumer, consumer_config
from mmsvc.devstack import stack
from mmsvc.processes.supervisor.lag import LagTracker
from mmsvc.processes.supervisor.router import Router
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.integration

THRESHOLD_S = 2.0
CHECK_S = 0.25


def _avro_string(text: str) -> bytes:
    data = text.encode()
    return _zigzag(len(data)) + data


def _zigzag(value: int) -> bytes:
    n, out = (value << 1) ^ (value >> 63), bytearray()
    while n & ~0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def other_accounts_fill(symbol: str) -> bytes:
    """The leading fields of an engine.event.v1 FILL of another account (all the router reads)."""
    body = _avro_string(str(uuid.uuid4())) + _zigzag(2)  # event_id, event_type
    body += _avro_string(symbol) + _avro_string("o-1") + _avro_string("c-1")
    body += _avro_string("someone-else")
    return b"\x00" + struct.pack(">I", 1) + body


class SupervisorConsumer:
    """The supervisor's consume loop without its workers: consume, route, measure (main.py)."""

    def __init__(self, bootstrap: str) -> None:
        self.lag = LagTracker(THRESHOLD_S)
        self.consumer = MarketConsumer(
            consumer_config(
                {"bootstrap.servers": bootstrap},
                f"lag-test-{uuid.uuid4().hex[:8]}",
                session_timeout_s=2,  # Tansu holds a first join for half of it
            ),
            on_broker_heard=self.lag.broker_heard,
        )
        self.router = Router("mm-account", engine_event_account_id)
        self.breaches: list[tuple[tuple[str, int], float]] = []
        self.worst = 0.0
        self._next_check = 0.0

    def run_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.step()

    def step(self) -> None:
        self.router.route_batch(self.consumer.poll(1000, 0.002), self.lag, time.time())
        if time.monotonic() < self._next_check:
            return
        self._next_check = time.monotonic() + CHECK_S
        wall = time.time()
        for topic, partition in self.consumer.assignment:
            high = self.consumer.high_watermark(topic, partition)
            if high is not None:
                self.lag.watermark(
                    (topic, partition), high, wall, from_end=topic in topics.MARKET_DATA
                )
        self.worst = max([self.worst, *self.lag.by_topic(wall).values()])
        breach = self.lag.breach(wall, self.consumer.assignment)
        if breach is not None:
            self.breaches.append(breach)

    def close(self) -> None:
        self.consumer.close()


@pytest.fixture
def supervisor_consumer(quiet_broker: str) -> Iterator[SupervisorConsumer]:
    consumer = SupervisorConsumer(quiet_broker)
    yield consumer
    consumer.close()


@pytest.fixture(scope="module")
def quiet_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker of this module's own, every topic created, and no traffic but the test's.

    The session's broker carries the simulator's feed and every earlier test's
    history; under that load the dev broker (Tansu) can stall one partition's
    fetches for seconds, which D8 rightly counts as lag and a 2 s threshold sees.
    """
    run_dir = tmp_path_factory.mktemp("lag-broker")
    bootstrap = stack.start_broker(run_dir)
    stack.create_topics(bootstrap)
    yield bootstrap
    stack.stop_process(run_dir, "broker")


@pytest.fixture
def producer(quiet_broker: str) -> Iterator[Producer]:
    producer = Producer({"bootstrap.servers": quiet_broker, "linger.ms": 2})
    yield producer
    producer.flush(5)


def _armed(consumer: SupervisorConsumer) -> bool:
    consumer.run_for(0.1)
    return consumer.lag.armed


def _produce(producer: Producer, age_s: float, count: int = 5) -> None:
    stamp = int((time.time() - age_s) * 1000)
    for _ in range(count):
        producer.produce(
            topics.ENGINE_EVENTS, other_accounts_fill("BTCUSDT"), b"BTCUSDT", timestamp=stamp
        )
    producer.flush(5)


def test_engine_events_stamped_a_minute_ago_are_not_lag_for_a_consumer_that_keeps_up(
    supervisor_consumer: SupervisorConsumer, producer: Producer
) -> None:
    wait_for(lambda: _armed(supervisor_consumer), 30, "lag trigger armed")
    routed_before = supervisor_consumer.router.stats["dropped_other_account"]

    for _ in range(12):  # 3 s of old-stamped events, past the 2 s threshold
        _produce(producer, age_s=60.0)
        supervisor_consumer.run_for(CHECK_S)
    supervisor_consumer.run_for(1.0)

    consumed = supervisor_consumer.router.stats["dropped_other_account"] - routed_before
    assert consumed == 60, "every old-stamped event reached the supervisor's router"
    assert supervisor_consumer.breaches == []
    assert supervisor_consumer.worst < THRESHOLD_S


def test_a_consumer_stopped_past_the_threshold_breaches(
    supervisor_consumer: SupervisorConsumer, producer: Producer
) -> None:
    wait_for(lambda: _armed(supervisor_consumer), 30, "lag trigger armed")
    supervisor_consumer.run_for(0.5)

    # The consume loop stops (as under SIGSTOP) while fresh events keep arriving.
    stopped_until = time.monotonic() + THRESHOLD_S + 1.0
    while time.monotonic() < stopped_until:
        _produce(producer, age_s=0.0, count=1)
        time.sleep(0.1)
    supervisor_consumer.run_for(1.0)

    assert supervisor_consumer.breaches, f"no breach; worst lag {supervisor_consumer.worst:.2f}s"
    (topic, _), lag_s = supervisor_consumer.breaches[0]
    assert topic == topics.ENGINE_EVENTS
    assert lag_s > THRESHOLD_S
