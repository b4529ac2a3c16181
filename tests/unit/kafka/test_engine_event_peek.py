"""engine_event_account_id: the supervisor's cheap filter agrees with the full decode (D14)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka.schema_registry import SchemaRegistryClient
from hypothesis import given, settings
from hypothesis import strategies as st

from mmsvc.adapters.kafka import topics
from mmsvc.adapters.kafka.codec import AvroCodec, DecodeError, engine_event_account_id

LONG = st.integers(min_value=-(2**63), max_value=2**63 - 1)
# Any text, long enough to need multi-byte length varints now and then.
TEXT = st.text(max_size=80)
OPTIONAL_TEXT = st.none() | TEXT

engine_events = st.fixed_dictionaries(
    {
        "event_id": TEXT,
        "event_type": st.sampled_from(["ACCEPTED", "REJECTED", "FILL", "CANCELED", "EXPIRED"]),
        "symbol": TEXT,
        "order_id": TEXT,
        "client_order_id": TEXT,
        "account_id": TEXT,
        "side": st.sampled_from(["BUY", "SELL"]),
        "price": TEXT,
        "quantity": TEXT,
        "fill_price": OPTIONAL_TEXT,
        "fill_quantity": OPTIONAL_TEXT,
        "remaining_quantity": TEXT,
        "fee": OPTIONAL_TEXT,
        "fee_asset": OPTIONAL_TEXT,
        "liquidity": st.sampled_from([None, "MAKER", "TAKER"]),
        "reason": OPTIONAL_TEXT,
        "ts_ms": LONG,
    }
)

TYPICAL_FILL = {
    "event_id": "7d3c0b3e-1a7b-4c1e-9f77-0c8e3a7a1c55",
    "event_type": "FILL",
    "symbol": "BTCUSDT",
    "order_id": "ord-123456789",
    "client_order_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427",
    "account_id": "acc-mm-0001",
    "side": "BUY",
    "price": "65000.10",
    "quantity": "0.010",
    "fill_price": "65000.10",
    "fill_quantity": "0.005",
    "remaining_quantity": "0.005",
    "fee": "-0.01",
    "fee_asset": "USDT",
    "liquidity": "MAKER",
    "reason": None,
    "ts_ms": 1_732_500_000_000,
}


@pytest.fixture(scope="module")
def codec() -> Iterator[AvroCodec]:
    # confluent-kafka's in-memory registry: no network in unit tests.
    c = AvroCodec(SchemaRegistryClient.new_client({"url": "mock://peek"}))
    yield c
    c.close()


def encode(codec: AvroCodec, event: dict[str, Any]) -> bytes:
    return codec.encode(topics.ENGINE_EVENTS, event)


@settings(max_examples=300)
@given(event=engine_events)
def test_peek_agrees_with_the_full_decode(codec: AvroCodec, event: dict[str, Any]) -> None:
    data = encode(codec, event)

    assert engine_event_account_id(data) == codec.decode(topics.ENGINE_EVENTS, data)["account_id"]
    assert engine_event_account_id(data) == event["account_id"]


@settings(max_examples=100)
@given(event=engine_events)
def test_every_cut_before_the_account_id_ends_gives_none(
    codec: AvroCodec, event: dict[str, Any]
) -> None:
    data = encode(codec, event)
    answers = [engine_event_account_id(data[:cut]) for cut in range(len(data) + 1)]

    first_answer = next(i for i, answer in enumerate(answers) if answer is not None)
    assert set(answers[:first_answer]) == {None}
    assert set(answers[first_answer:]) == {event["account_id"]}


@given(data=st.binary(max_size=300))
def test_arbitrary_bytes_never_raise(data: bytes) -> None:
    assert engine_event_account_id(data) is None or isinstance(engine_event_account_id(data), str)


@given(body=st.binary(max_size=300))
def test_arbitrary_bodies_behind_a_valid_header_never_raise(body: bytes) -> None:
    answer = engine_event_account_id(b"\x00\x00\x00\x00\x01" + body)

    assert answer is None or isinstance(answer, str)


def header() -> bytes:
    return struct.pack(">BI", 0, 1)


def avro_string(value: bytes) -> bytes:
    assert len(value) < 64  # one-byte zigzag length
    return bytes([len(value) << 1]) + value


def leading_fields(
    event_type: int = 2, account: bytes = b"acc-1", event_id: bytes = b"e1"
) -> bytes:
    strings = b"".join(avro_string(s) for s in (b"BTCUSDT", b"o1", b"c1"))
    return avro_string(event_id) + bytes([event_type << 1]) + strings + avro_string(account)


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(None, id="null value"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\x00\x00\x00", id="shorter than the header"),
        pytest.param(header(), id="header only"),
        pytest.param(b"\x01" + header()[1:] + leading_fields(), id="wrong magic byte"),
        pytest.param(header() + leading_fields(event_type=5), id="enum index out of range"),
        pytest.param(header() + b"\x01" + leading_fields()[3:], id="negative string length"),
        pytest.param(header() + b"\x7e" + b"short", id="length past the end"),
        pytest.param(header() + leading_fields(account=b"\xff\xfe"), id="account_id not UTF-8"),
        pytest.param(header() + b"\xff" * 12, id="unterminated varint"),
    ],
)
def test_malformed_bytes_give_none(data: bytes | None) -> None:
    assert engine_event_account_id(data) is None


def test_hand_built_leading_fields_are_read() -> None:
    assert engine_event_account_id(header() + leading_fields(account=b"acc-42")) == "acc-42"


def test_peek_reads_only_the_leading_fields_a_full_decode_needs_all(codec: AvroCodec) -> None:
    """Why the filter is cheap (D14), shown without a clock: it stops at account_id.

    The speed itself is a benchmark's figure (``make bench``, the router), never a
    test's: a timing assertion fails under coverage or load.
    """
    data = encode(codec, TYPICAL_FILL)
    account = TYPICAL_FILL["account_id"]
    enough = next(n for n in range(len(data) + 1) if engine_event_account_id(data[:n]) == account)
    assert enough < len(data)  # the eleven fields after account_id are never read
    with pytest.raises(DecodeError):
        codec.decode(topics.ENGINE_EVENTS, data[:enough])
