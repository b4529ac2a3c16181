"""Helpers for driving the exchange simulator over its real interfaces."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
import requests
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from mmsvc.adapters.kafka.codec import AvroCodec
from tests.fixtures.exchange import Exchange


@dataclass(frozen=True)
class Seen:
    """One decoded Kafka message."""

    topic: str
    key: str | None
    record: dict[str, Any]
    published_ms: int = 0  # the Kafka timestamp: when the simulator produced it


class TopicReader:
    """Reads topics from the beginning (a group id of its own), decoding only chosen keys."""

    def __init__(self, bootstrap: str, codec: AvroCodec, topics: Iterable[str], keys: set[str]):
        self.codec = codec
        self.keys = {key.encode() for key in keys}
        self.seen: list[Seen] = []
        self.consumer = Consumer(
            {
                "bootstrap.servers": bootstrap,
                "group.id": f"exchange-test-{uuid.uuid4()}",
                "enable.auto.commit": False,
                "session.timeout.ms": 6000,
            }
        )
        partitions = []
        for topic in topics:
            meta = self.consumer.list_topics(topic, timeout=10).topics[topic]
            partitions += [TopicPartition(topic, p, OFFSET_BEGINNING) for p in meta.partitions]
        self.consumer.assign(partitions)

    def read_until(self, done: Callable[[list[Seen]], bool], timeout: float = 10) -> list[Seen]:
        """Read until ``done(seen)`` holds; fail the test when ``timeout`` passes first."""
        deadline = time.monotonic() + timeout
        while not done(self.seen):
            assert time.monotonic() < deadline, f"condition not met in {timeout}s"
            self.read_for(0.1)
        return self.seen

    def read_for(self, seconds: float) -> list[Seen]:
        """Read whatever arrives within ``seconds``."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            for message in self.consumer.consume(num_messages=1000, timeout=min(left, 0.1)):
                if message.error() is not None or message.key() not in self.keys:
                    continue
                record = self.codec.decode(message.topic(), message.value())
                published_ms = message.timestamp()[1]
                self.seen.append(
                    Seen(message.topic(), message.key().decode(), record, published_ms)
                )
        return self.seen

    def of(self, topic: str, **fields: Any) -> list[dict[str, Any]]:
        """Records seen on ``topic`` whose fields equal ``fields``."""
        return [s.record for s in self.seen_on(topic, **fields)]

    def seen_on(self, topic: str, **fields: Any) -> list[Seen]:
        """Messages seen on ``topic`` whose record fields equal ``fields``, with timestamps."""
        return [
            s
            for s in self.seen
            if s.topic == topic and all(s.record.get(k) == v for k, v in fields.items())
        ]

    def close(self) -> None:
        """Leave the topics."""
        self.consumer.close()


@pytest.fixture(scope="module")
def codec(registry_url: str) -> Iterator[AvroCodec]:
    """The project's own Avro codec against the session's registry."""
    instance = AvroCodec(registry_url)
    yield instance
    instance.close()


@pytest.fixture
def reader_factory(kafka_bootstrap: str, codec: AvroCodec) -> Iterator[Callable[..., TopicReader]]:
    """Make TopicReaders that are closed after the test."""
    readers: list[TopicReader] = []

    def make(topics: Iterable[str], keys: Iterable[str]) -> TopicReader:
        reader = TopicReader(kafka_bootstrap, codec, topics, set(keys))
        readers.append(reader)
        return reader

    yield make
    for reader in readers:
        reader.close()


@pytest.fixture
def sim(exchange: Exchange) -> Iterator[Exchange]:
    """The session's simulator, with every fault knob cleared after the test."""
    yield exchange
    exchange.clear_faults()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """A keep-alive HTTP session, as the service uses."""
    with requests.Session() as http:
        yield http


@pytest.fixture
def account() -> str:
    """A market maker account of the test's own, so its orders and events stand apart."""
    return str(uuid.uuid4())


def order_body(account_id: str, **overrides: Any) -> dict[str, Any]:
    """A valid POST /v1/orders body for BTCUSDT (overrides win)."""
    body = {
        "client_order_id": str(uuid.uuid4()),
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "time_in_force": "POST_ONLY",
        "price": "60000.0",
        "quantity": "0.0005",
        "account_id": account_id,
        "user_id": "00000000-0000-0000-0000-000000000001",
        "account_type": "SYSTEM_MARKET_MAKER",
    }
    return {**body, **overrides}


def below_touch(exchange: Exchange, symbol: str, bps: int) -> str:
    """A bid price on the tick grid ``bps`` basis points below the current best bid."""
    market = exchange.market(symbol)
    tick = Decimal(1).scaleb(Decimal(market["best_bid"]).as_tuple().exponent)
    price = Decimal(market["best_bid"]) * (1 - Decimal(bps) / 10_000)
    return str((price / tick).to_integral_value(rounding="ROUND_FLOOR") * tick)
