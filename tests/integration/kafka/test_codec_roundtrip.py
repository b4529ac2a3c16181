"""The Avro codec against the real registry and broker: every topic round-trips, garbage fails."""

from __future__ import annotations

import io
import json
import random
import struct
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import fastavro
import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from mmsvc.adapters.kafka import topics
from mmsvc.adapters.kafka.codec import AvroCodec, DecodeError, EncodeError
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.integration

OFFSET_BEGINNING = -2
UNKNOWN_SCHEMA_ID = 987_654_321
# Symbols no service quotes: these values go to the session's shared broker, where a
# new consumer group replays md.instrument.* from the start (D15). Published for
# BTCUSDT, this test's made-up instrument update (tick 0.01) and same-millisecond
# halt and resume became every later e2e worker's BTCUSDT: INVALID_TICK_SIZE
# rejects, a REJECT_STORM kill, a symbol halted for good.
SYMBOL, PERP = "CODECUSDT", "CODEC-PERP"


def samples(ts_ms: int) -> dict[str, dict[str, Any]]:
    """One realistic value per topic; ``ts_ms`` marks this run's messages."""
    level = {"price": "65000.10", "size": "0.250"}
    instrument = {
        "symbol": SYMBOL,
        "base_asset": "BTC",
        "quote_asset": "USDT",
        "kind": "SPOT",
        "tick_size": "0.10",
        "lot_size": "0.001",
        "min_notional": "5",
        "status": "TRADING",
        "ts_ms": ts_ms,
    }
    return {
        topics.ORDERBOOK_SNAPSHOT: {
            "symbol": SYMBOL,
            "sequence": 1_000_001,
            "bids": [level, {"price": "65000.00", "size": "1.5"}],
            "asks": [{"price": "65000.20", "size": "0.75"}],
            "ts_ms": ts_ms,
        },
        topics.ORDERBOOK_DELTA: {
            "symbol": SYMBOL,
            "sequence": 1_000_002,
            "changes": [
                {"side": "BID", "price": "65000.10", "size": "0"},
                {"side": "ASK", "price": "65000.30", "size": "2.125"},
            ],
            "ts_ms": ts_ms,
        },
        topics.TRADES: {
            "symbol": SYMBOL,
            "trade_id": "t-88121",
            "price": "65000.20",
            "size": "0.010",
            "aggressor_side": "BUY",
            "ts_ms": ts_ms,
        },
        topics.MARK: {
            "symbol": PERP,
            "mark_price": "3120.55",
            "index_price": "3120.40",
            "ts_ms": ts_ms,
        },
        topics.ENGINE_EVENTS: {
            "event_id": str(uuid.uuid4()),
            "event_type": "FILL",
            "symbol": SYMBOL,
            "order_id": "ord-7731",
            "client_order_id": str(uuid.uuid4()),
            "account_id": "acc-mm-0001",
            "side": "SELL",
            "price": "65000.20",
            "quantity": "0.020",
            "fill_price": "65000.20",
            "fill_quantity": "0.010",
            "remaining_quantity": "0.010",
            "fee": "-0.0065",
            "fee_asset": "USDT",
            "liquidity": "MAKER",
            "reason": None,
            "ts_ms": ts_ms,
        },
        topics.INSTRUMENT_CREATED: instrument,
        topics.INSTRUMENT_UPDATED: {**instrument, "tick_size": "0.01", "kind": "PERPETUAL"},
        topics.INSTRUMENT_HALT: {"symbol": SYMBOL, "reason": "circuit breaker", "ts_ms": ts_ms},
        topics.INSTRUMENT_RESUME: {"symbol": SYMBOL, "reason": None, "ts_ms": ts_ms},
        topics.QUOTE_SIMULATED: {
            "symbol": SYMBOL,
            "level": 0,
            "bid_price": "64990.00",
            "bid_size": "0.050",
            "ask_price": None,
            "ask_size": None,
            "mid": "65000.15",
            "inventory_usdt": "-1250.40",
            "spread_bps": "3.1",
            "ts_ms": ts_ms,
        },
        topics.RISK_TRIGGERED: {
            "event_id": str(uuid.uuid4()),
            "symbol": None,  # every symbol: published with a null key
            "trigger": "KAFKA_LAG",
            "detail": "lag 12.4s over 10s on engine.event.v1[3]",
            "position": "15230.50",
            "pnl": "-120.75",
            "shadow": False,
            "ts_ms": ts_ms,
        },
        topics.STATE_CHANGED: {
            "event_id": str(uuid.uuid4()),
            "symbol": SYMBOL,
            "previous_state": "ACTIVE",
            "new_state": "HALTED",
            "reason": "EXPOSURE",
            "actor": "system",
            "shadow": True,
            "ts_ms": ts_ms,
        },
    }


@pytest.fixture
def codec(registry_url: str) -> Iterator[AvroCodec]:
    c = AvroCodec(registry_url)
    yield c
    c.close()


def key_of(record: dict[str, Any]) -> bytes | None:
    symbol = record.get("symbol")
    return None if symbol is None else symbol.encode()


def run_of(message: Any) -> bytes | None:
    return dict(message.headers() or []).get("run")


def consume_run(bootstrap: str, run: bytes, wanted: int, deadline_s: float = 30) -> list[Any]:
    """The messages of every topic tagged with ``run``, read from the beginning."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"codec-roundtrip-{uuid.uuid4()}",
            "enable.auto.commit": False,
        }
    )
    consumer.assign(
        [
            TopicPartition(topic, partition, OFFSET_BEGINNING)
            for topic in topics.ALL
            for partition in range(topics.PARTITIONS[topic])
        ]
    )
    seen: list[Any] = []

    def all_read() -> bool:
        # Count our messages rather than trust Tansu's high watermark, which lags.
        for message in consumer.consume(num_messages=500, timeout=0.5):
            if message.error() is None and run_of(message) == run:
                seen.append(message)
        return len(seen) >= wanted

    try:
        wait_for(all_read, deadline_s, f"{wanted} messages of the run", poll_s=0)
    finally:
        consumer.close()
    return seen


def test_every_topic_round_trips_through_the_broker_and_garbage_is_refused(
    kafka_bootstrap: str, registry_url: str, codec: AvroCodec
) -> None:
    run = str(uuid.uuid4()).encode()
    expected = samples(ts_ms=int(time.time() * 1000))
    assert set(expected) == topics.ALL
    garbage = b"\x00\x00\x00\x00\x01" + bytes(random.Random(7).randbytes(40))
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for topic, record in expected.items():
        producer.produce(topic, codec.encode(topic, record), key_of(record), headers={"run": run})
    producer.produce(topics.TRADES, garbage, SYMBOL.encode(), headers={"run": run, "garbage": b"1"})
    assert producer.flush(10) == 0

    ours = consume_run(kafka_bootstrap, run, wanted=len(expected) + 1)

    # A separate codec: it must fetch every writer schema by id from the registry.
    reader = AvroCodec(registry_url)
    decoded = {}
    for message in ours:
        if "garbage" in dict(message.headers()):
            with pytest.raises(DecodeError):
                reader.decode(message.topic(), message.value())
            continue
        decoded[message.topic()] = reader.decode(message.topic(), message.value())
        assert message.key() == key_of(expected[message.topic()])
    reader.close()
    assert len(ours) == len(expected) + 1
    assert decoded == expected


def test_decimals_come_back_as_the_same_strings(codec: AvroCodec) -> None:
    price = Decimal("65000.10")
    record = samples(ts_ms=1)[topics.MARK] | {"mark_price": str(price)}

    back = codec.decode(topics.MARK, codec.encode(topics.MARK, record))

    assert back["mark_price"] == "65000.10"
    assert Decimal(back["mark_price"]) == price


def valid_value(codec: AvroCodec) -> bytes:
    return codec.encode(topics.ENGINE_EVENTS, samples(ts_ms=1)[topics.ENGINE_EVENTS])


@pytest.mark.parametrize(
    "corrupt",
    [
        pytest.param(lambda _v: None, id="null value"),
        pytest.param(lambda _v: b"", id="empty"),
        pytest.param(lambda v: v[:4], id="shorter than the header"),
        pytest.param(lambda v: v[:5], id="header only"),
        pytest.param(lambda v: b"\x01" + v[1:], id="wrong magic byte"),
        pytest.param(
            lambda v: struct.pack(">bI", 0, UNKNOWN_SCHEMA_ID) + v[5:], id="unknown schema id"
        ),
        pytest.param(lambda v: v[:-3], id="truncated body"),
        pytest.param(lambda v: v + b"\x00\x01", id="trailing bytes"),
        pytest.param(lambda v: v[:5] + b"\x0ebad\xff", id="body of another topic"),
    ],
)
def test_garbage_values_raise_decode_error(codec: AvroCodec, corrupt: Any) -> None:
    with pytest.raises(DecodeError) as caught:
        codec.decode(topics.ENGINE_EVENTS, corrupt(valid_value(codec)))

    assert caught.value.topic == topics.ENGINE_EVENTS
    assert caught.value.reason


def test_random_bytes_behind_a_valid_header_raise_decode_error_and_nothing_else(
    codec: AvroCodec,
) -> None:
    header = valid_value(codec)[:5]
    rng = random.Random(20240601)
    refused = 0
    for _ in range(2000):
        body = rng.randbytes(rng.randint(0, 200))
        try:
            codec.decode(topics.ENGINE_EVENTS, header + body)
        except DecodeError:
            refused += 1
    assert refused > 1900  # a rare random body can be a well-formed event


def test_records_that_do_not_match_the_schema_raise_encode_error(codec: AvroCodec) -> None:
    good = samples(ts_ms=1)[topics.TRADES]
    bad_records = [
        {k: v for k, v in good.items() if k != "price"},  # missing field
        good | {"price": 65000.1},  # a float where a decimal string belongs
        good | {"aggressor_side": "SIDEWAYS"},  # not an enum symbol
        good | {"ts_ms": "now"},
        good | {"venue": "X"},  # unknown field: would be dropped silently otherwise
    ]
    for record in bad_records:
        with pytest.raises(EncodeError):
            codec.encode(topics.TRADES, record)


class CountingClient(SchemaRegistryClient):
    """A real client that counts the calls that reach its cache or the registry."""

    def __init__(self, url: str) -> None:
        super().__init__({"url": url})
        self.calls = 0

    def register_schema(self, *args: Any, **kwargs: Any) -> int:
        self.calls += 1
        return int(super().register_schema(*args, **kwargs))

    def get_schema(self, *args: Any, **kwargs: Any) -> Schema:
        self.calls += 1
        return super().get_schema(*args, **kwargs)


def test_no_registry_call_after_the_first_message_of_a_topic(registry_url: str) -> None:
    client = CountingClient(registry_url)
    codec = AvroCodec(client)
    record = samples(ts_ms=1)[topics.ORDERBOOK_DELTA]

    first = codec.encode(topics.ORDERBOOK_DELTA, record)
    calls_after_first = client.calls
    for _ in range(100):
        assert codec.decode(topics.ORDERBOOK_DELTA, codec.encode(topics.ORDERBOOK_DELTA, record))

    assert calls_after_first == 1
    assert client.calls == 1
    assert codec.register(topics.ORDERBOOK_DELTA) == struct.unpack(">I", first[1:5])[0]
    client.close()


def test_an_older_writer_schema_is_resolved_against_the_local_one(
    registry_url: str, codec: AvroCodec
) -> None:
    old = {
        "type": "record",
        "name": "MarkPrice",
        "namespace": "tradex.md.v1",
        "fields": [
            {"name": "symbol", "type": "string"},
            {"name": "mark_price", "type": "string"},
            {"name": "ts_ms", "type": "long"},
        ],
    }
    client = SchemaRegistryClient({"url": registry_url})
    old_id = client.register_schema(f"old-mark-{uuid.uuid4().hex}-value", Schema(json.dumps(old)))
    client.close()
    body = io.BytesIO()
    fastavro.schemaless_writer(
        body, fastavro.parse_schema(old), {"symbol": "ETH-PERP", "mark_price": "3120.5", "ts_ms": 7}
    )

    record = codec.decode(topics.MARK, struct.pack(">bI", 0, old_id) + body.getvalue())

    assert record == {"symbol": "ETH-PERP", "mark_price": "3120.5", "index_price": None, "ts_ms": 7}


def test_one_codec_serves_many_threads(registry_url: str) -> None:
    codec = AvroCodec(registry_url)
    expected = samples(ts_ms=5)

    def round_trip(topic: str) -> bool:
        return codec.decode(topic, codec.encode(topic, expected[topic])) == expected[topic]

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(round_trip, sorted(topics.ALL) * 20))

    assert all(results)
    codec.close()
