"""The wire rules of D24/D31: every consumed topic, every field kind, and never an exception."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mmsvc.adapters.kafka import topics
from mmsvc.adapters.kafka.validation import check

SYMBOL = "BTC-USDT"


def snapshot(**over: Any) -> dict[str, Any]:
    record = {
        "symbol": SYMBOL,
        "sequence": 10,
        "bids": [{"price": "99.5", "size": "1"}],
        "asks": [{"price": "100.5", "size": "2"}],
        "ts_ms": 1,
    }
    return record | over


def delta(**over: Any) -> dict[str, Any]:
    change = {"side": "BID", "price": "99", "size": "0"}
    return {"symbol": SYMBOL, "sequence": 11, "changes": [change], "ts_ms": 1} | over


def fill(**over: Any) -> dict[str, Any]:
    record = {
        "event_id": "e-1",
        "event_type": "FILL",
        "symbol": SYMBOL,
        "order_id": "o-1",
        "client_order_id": "c-1",
        "account_id": "mm",
        "side": "BUY",
        "price": "100",
        "quantity": "1",
        "fill_price": "100",
        "fill_quantity": "0.5",
        "remaining_quantity": "0.5",
        "fee": "-0.01",
        "fee_asset": "USDT",
        "liquidity": "MAKER",
        "reason": None,
        "ts_ms": 5,
    }
    return record | over


def instrument(**over: Any) -> dict[str, Any]:
    record = {
        "symbol": SYMBOL,
        "base_asset": "BTC",
        "quote_asset": "USDT",
        "kind": "SPOT",
        "tick_size": "0.01",
        "lot_size": "0.001",
        "min_notional": "10",
        "status": "TRADING",
        "ts_ms": 1,
    }
    return record | over


def reason(topic: str, record: dict[str, Any], key: str | None = SYMBOL) -> str | None:
    refusal = check(topic, key, record)
    return None if refusal is None else refusal.reason


def test_valid_records_of_every_kind_pass():
    assert reason(topics.ORDERBOOK_SNAPSHOT, snapshot()) is None
    assert reason(topics.ORDERBOOK_DELTA, delta()) is None  # size 0 removes a level
    assert reason(topics.ENGINE_EVENTS, fill()) is None  # a negative fee is a rebate
    assert reason(topics.INSTRUMENT_CREATED, instrument()) is None
    assert reason(topics.INSTRUMENT_HALT, {"symbol": SYMBOL, "reason": None, "ts_ms": 1}) is None
    mark = {"symbol": SYMBOL, "mark_price": "100", "index_price": None, "ts_ms": 1}
    assert reason(topics.MARK, mark) is None
    trade = {
        "symbol": SYMBOL,
        "trade_id": "t",
        "price": "1",
        "size": "2",
        "aggressor_side": "BUY",
        "ts_ms": 1,
    }
    assert reason(topics.TRADES, trade) is None


@pytest.mark.parametrize(
    ("price", "expected"),
    [
        ("NaN", "non_finite_price"),
        ("nan", "non_finite_price"),
        ("sNaN", "non_finite_price"),
        ("Infinity", "non_finite_price"),
        ("-Infinity", "non_finite_price"),
        ("1E30", "out_of_range_price"),
        ("1e-30", "out_of_range_price"),
        ("0", "not_positive_price"),
        ("-1", "negative_price"),
        ("", "malformed_price"),
        (" 1", "malformed_price"),
        ("1_000", "malformed_price"),
        ("abc", "malformed_price"),
        ("1" * 100, "malformed_price"),
    ],
)
def test_bad_prices_are_refused_with_their_reason(price, expected):
    bad = snapshot(bids=[{"price": price, "size": "1"}])
    assert reason(topics.ORDERBOOK_SNAPSHOT, bad) == expected


def test_sizes_quantities_and_sequences():
    negative = delta(changes=[{"side": "ASK", "price": "1", "size": "-1"}])
    assert reason(topics.ORDERBOOK_DELTA, negative) == "negative_size"
    assert reason(topics.ENGINE_EVENTS, fill(fill_quantity="-1")) == "negative_quantity"
    assert reason(topics.ENGINE_EVENTS, fill(fill_quantity="0")) == "not_positive_quantity"
    assert reason(topics.ENGINE_EVENTS, fill(remaining_quantity="-0.1")) == "negative_quantity"
    assert reason(topics.ENGINE_EVENTS, fill(fee="NaN")) == "non_finite_fee"
    assert reason(topics.ENGINE_EVENTS, fill(fill_price=None)) == "incomplete_fill"
    assert reason(topics.ORDERBOOK_SNAPSHOT, snapshot(sequence=-1)) == "negative_sequence"
    assert reason(topics.INSTRUMENT_UPDATED, instrument(tick_size="0")) == "not_positive_tick_size"


def test_strings_are_bounded_by_their_columns():
    assert reason(topics.ENGINE_EVENTS, fill(event_id="e" * 129)) == "bad_event_id"
    assert reason(topics.ENGINE_EVENTS, fill(event_id="e" * 128)) is None
    assert reason(topics.ENGINE_EVENTS, fill(event_id="")) == "bad_event_id"
    assert reason(topics.ENGINE_EVENTS, fill(order_id="o\x00")) == "bad_order_id"
    assert reason(topics.ENGINE_EVENTS, fill(fee_asset="X" * 17)) == "bad_fee_asset"
    assert reason(topics.ENGINE_EVENTS, fill(reason="r" * 5000)) == "bad_reason"


def test_a_symbol_other_than_the_key_is_refused():
    assert reason(topics.ORDERBOOK_SNAPSHOT, snapshot(symbol="ETH-USDT")) == "symbol_key_mismatch"
    assert reason(topics.ENGINE_EVENTS, fill(), key="ETH-USDT") == "symbol_key_mismatch"
    assert reason(topics.ORDERBOOK_SNAPSHOT, snapshot(), key=None) == "symbol_key_mismatch"


def test_a_crossed_snapshot_is_refused_whole():
    crossed = snapshot(bids=[{"price": "101", "size": "1"}])
    assert reason(topics.ORDERBOOK_SNAPSHOT, crossed) == "crossed_book"
    # A zero-size level is no level: it cannot cross.
    empty_level = snapshot(bids=[{"price": "101", "size": "0"}, {"price": "99", "size": "1"}])
    assert reason(topics.ORDERBOOK_SNAPSHOT, empty_level) is None


def test_missing_fields_and_unknown_topics_are_refusals_not_exceptions():
    assert reason(topics.ENGINE_EVENTS, {"symbol": SYMBOL}) == "malformed_record"
    assert reason("no.such.topic", {"symbol": SYMBOL}) == "unknown_topic"


_ANY = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=30) | st.floats(),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
_FIELDS = ["symbol", "sequence", "bids", "asks", "changes", "price", "size", "ts_ms", "event_id"]


@settings(max_examples=300, deadline=None)
@given(
    topic=st.sampled_from(sorted(topics.CONSUMED)),
    record=st.dictionaries(st.sampled_from(_FIELDS), _ANY),
)
def test_check_never_raises_on_any_mapping(topic, record):
    record.setdefault("symbol", SYMBOL)
    result = check(topic, SYMBOL, record)
    assert result is None or isinstance(result.reason, str)
