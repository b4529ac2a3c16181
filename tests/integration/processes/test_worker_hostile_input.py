"""Hostile Kafka values through the worker's real decode, validate and apply path (D24, D31).

The worker is built as its process builds it (real codec on a real Schema
Registry, real PostgreSQL), without its sockets, lock or Order Service: every
consumed topic's values, valid and mutated (NaN, Infinity, 1E30, negative,
empty, huge, NUL, the wrong symbol, flipped bytes), go through
``Worker._on_data`` and then a decision on the timer path. The property: no
exception escapes, the book and inventory stay valid (finite, never a crossed
book stored as known), and every refused message is counted.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, update

from mmsvc.adapters import metrics
from mmsvc.adapters.db.dead_letters import DeadLetterRepository
from mmsvc.adapters.db.engine import make_session_factory
from mmsvc.adapters.db.models import MMState
from mmsvc.adapters.kafka import topics, validation
from mmsvc.adapters.kafka.codec import DecodeError
from mmsvc.adapters.kafka.events import now_ms
from mmsvc.adapters.zmq.protocol import DataFrame
from mmsvc.domain.book import BookSide
from mmsvc.domain.model import SymbolState
from mmsvc.domain.trader import SymbolTrader, instrument_from_record
from mmsvc.processes.worker.main import Worker, service_limits
from tests.fixtures.worker import ACCOUNT, fill_record, in_process_worker, instrument_record

pytestmark = pytest.mark.integration

HOSTILE_NUMBERS = [
    "NaN",
    "-NaN",
    "sNaN",
    "Infinity",
    "-Infinity",
    "inf",
    "1E30",
    "1e-40",
    "-1",
    "0",
    "",
    " 1",
    "1_0",
    "9" * 60,
    "0E+999",
    "abc",
]
_ENUMS = ("event_type", "side", "kind", "status", "aggressor_side", "liquidity")
HOSTILE_STRINGS = ["", "x" * 5000, "bad\x00id", "\u00e9" * 200]


def base_records(symbol: str, sequence: int) -> dict[str, dict[str, Any]]:
    """One valid record of every consumed topic."""
    ts = now_ms()
    return {
        topics.ORDERBOOK_SNAPSHOT: {
            "symbol": symbol,
            "sequence": sequence,
            "bids": [{"price": "99.50", "size": "1"}, {"price": "99.00", "size": "2"}],
            "asks": [{"price": "100.50", "size": "1"}, {"price": "101.00", "size": "3"}],
            "ts_ms": ts,
        },
        topics.ORDERBOOK_DELTA: {
            "symbol": symbol,
            "sequence": sequence + 1,
            "changes": [{"side": "BID", "price": "99.60", "size": "0.5"}],
            "ts_ms": ts,
        },
        topics.TRADES: {
            "symbol": symbol,
            "trade_id": "t-1",
            "price": "100",
            "size": "0.1",
            "aggressor_side": "BUY",
            "ts_ms": ts,
        },
        topics.MARK: {"symbol": symbol, "mark_price": "100", "index_price": None, "ts_ms": ts},
        topics.ENGINE_EVENTS: fill_record(symbol, fee="-0.0001", ts_ms=ts),
        topics.INSTRUMENT_UPDATED: instrument_record(symbol, ts + 1),
        topics.INSTRUMENT_CREATED: instrument_record(symbol, ts + 1),
        topics.INSTRUMENT_HALT: {"symbol": symbol, "reason": "auction", "ts_ms": ts + 1},
        topics.INSTRUMENT_RESUME: {"symbol": symbol, "reason": None, "ts_ms": ts + 1},
    }


# ------------------------------------------------------------------ the worker


@pytest.fixture(scope="module")
def worker(
    database_url: str, db_engine: Engine, registry_url: str, redis_url: str, tmp_path_factory: Any
) -> Iterator[Worker]:
    """A worker as its process wires it, minus sockets, lock and Order Service (execution None)."""
    with in_process_worker(
        database_url=database_url,
        db_engine=db_engine,
        registry_url=registry_url,
        redis_url=redis_url,
        run_dir=tmp_path_factory.mktemp("fuzz-run"),
        prefix="F",
    ) as w:
        yield w


def reset(worker: Worker) -> None:
    """A fresh ACTIVE trader with a known instrument, as after start and enable.

    The row goes back to ACTIVE too: an earlier example may have halted it, and the
    guarded transition (D30) rightly refuses to pause a row that is HALTED.
    """
    with make_session_factory(worker.engine).begin() as session:
        session.execute(
            update(MMState)
            .where(MMState.symbol == worker.symbol)
            .values(state="ACTIVE", trigger=None, trigger_detail=None)
        )
    config = worker.store.load_config()
    assert config is not None
    worker.trader = SymbolTrader(config, service_limits(worker.settings), SymbolState.ACTIVE)
    worker.wire()  # the kill switch, commands and edge follow the fresh trader
    worker.attach_instrument(instrument_from_record(instrument_record(worker.symbol)), now_ms())


def rejected_total() -> float:
    """Every refused or undecodable message this process counted."""
    total = 0.0
    for family in metrics.local_registry().collect():
        if family.name in ("mm_messages_rejected", "mm_decode_errors"):
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return total


def assert_state_valid(worker: Worker) -> None:
    trader = worker.trader
    book = trader.book
    for side in (BookSide.BID, BookSide.ASK):
        for price, size in book.depth(side).items():
            assert price.is_finite()
            assert size.is_finite()
            assert price > 0
            assert size > 0
    top = book.top()
    if top is not None:
        assert top.best_bid < top.best_ask, "a crossed book is in use"
    if trader.mark is not None:
        assert trader.mark.price.is_finite()
        assert trader.mark.price > 0
    if trader.instrument is not None:
        assert trader.instrument.tick_size.is_finite()
        assert trader.instrument.tick_size > 0
    inventory = trader.inventory
    if inventory is not None:
        assert inventory.quantity.is_finite()
        assert inventory.realized_pnl.is_finite()
    assert worker.trader.fees_paid.is_finite()


def deliver(worker: Worker, topic: str, value: bytes, offset: int) -> None:
    """What _drain_data does for one frame, then a decision on the timer path."""
    if worker.keeper.renewal_due():  # the loop's lease renewal (D26)
        worker.keeper.renew()
    worker._on_data(DataFrame(topic, value, 0, offset, now_ms(), topic not in topics.MARKET_DATA))
    worker.requote(now_ms())


def send(worker: Worker, topic: str, record: dict[str, Any], offset: int) -> None:
    """Encode ``record`` with the project's codec and deliver it."""
    deliver(worker, topic, worker.codec.encode(topic, record), offset)


def expect_refused(worker: Worker, topic: str, value: bytes) -> bool:
    """Whether the wire rules (or the codec) must refuse this value."""
    try:
        record = worker.codec.decode(topic, value)
    except DecodeError:
        return True
    if topic == topics.ENGINE_EVENTS and record.get("account_id") != ACCOUNT:
        return False
    return validation.check(topic, worker.symbol, record) is not None


# ------------------------------------------------------------------ mutations


def _mutate(record: dict[str, Any], data: st.DataObject) -> dict[str, Any]:
    record = dict(record)
    fields = sorted(record)
    name = data.draw(st.sampled_from(fields), label="field")
    value = record[name]
    if name == "symbol":
        record[name] = data.draw(st.sampled_from(["OTHERSYM", "", "x" * 300]), label="symbol")
    elif isinstance(value, str) and name not in _ENUMS:
        pool = HOSTILE_NUMBERS + HOSTILE_STRINGS
        record[name] = data.draw(st.sampled_from(pool) | st.text(max_size=40), label="value")
    elif isinstance(value, int):
        record[name] = data.draw(st.sampled_from([-1, -(2**40), 2**62]), label="int")
    elif isinstance(value, list):
        if value:
            level = dict(value[0])
            key = data.draw(st.sampled_from(["price", "size"]), label="level field")
            level[key] = data.draw(st.sampled_from(HOSTILE_NUMBERS), label="level value")
            record[name] = [level, *value[1:]]
    elif value is None and name in ("fee", "index_price", "fill_price", "fill_quantity"):
        record[name] = data.draw(st.sampled_from(HOSTILE_NUMBERS), label="optional")
    return record


_SETTINGS = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@_SETTINGS
@given(data=st.data())
def test_mutated_values_of_every_topic_never_escape_and_leave_state_valid(worker, data):
    reset(worker)
    base = base_records(worker.symbol, sequence=data.draw(st.integers(1, 10**6), label="seq"))
    send(worker, topics.ORDERBOOK_SNAPSHOT, base[topics.ORDERBOOK_SNAPSHOT], 1)
    for offset in range(2, 2 + data.draw(st.integers(1, 4), label="messages")):
        topic = data.draw(st.sampled_from(sorted(topics.CONSUMED)), label="topic")
        record = base_records(worker.symbol, base[topics.ORDERBOOK_SNAPSHOT]["sequence"])[topic]
        how = data.draw(st.sampled_from(["valid", "field", "field", "bytes", "flip"]), label="how")
        if how == "bytes":
            value = data.draw(st.binary(max_size=80), label="raw")
        else:
            if how in ("field", "flip"):
                record = _mutate(record, data) if how == "field" else record
            value = worker.codec.encode(topic, record)
            if how == "flip" and len(value) > 5:
                at = data.draw(st.integers(5, len(value) - 1), label="at")
                value = value[:at] + bytes([value[at] ^ 0xFF]) + value[at + 1 :]
        refused = expect_refused(worker, topic, value)
        before = rejected_total()

        deliver(worker, topic, value, offset)

        assert_state_valid(worker)
        if refused:
            assert rejected_total() == before + 1, f"{topic}: a refused message was not counted"


def test_the_named_hostile_messages_are_refused_and_pull_or_hold(worker, db_engine):
    """The acceptance list: NaN snapshot, negative delta, negative fill, symbol not its key."""
    reset(worker)
    symbol, codec = worker.symbol, worker.codec
    base = base_records(symbol, sequence=100)
    send(worker, topics.ORDERBOOK_SNAPSHOT, base[topics.ORDERBOOK_SNAPSHOT], 1)
    assert worker.trader.book.is_known

    nan_snapshot = base[topics.ORDERBOOK_SNAPSHOT] | {
        "sequence": 200,
        "bids": [{"price": "NaN", "size": "1"}],
    }
    send(worker, topics.ORDERBOOK_SNAPSHOT, nan_snapshot, 2)
    assert not worker.trader.book.is_known  # unknown until the next good snapshot
    assert worker.trader.book.sequence == 100  # nothing of the bad one was stored

    good = base[topics.ORDERBOOK_SNAPSHOT] | {"sequence": 300}
    deliver(worker, topics.ORDERBOOK_SNAPSHOT, codec.encode(topics.ORDERBOOK_SNAPSHOT, good), 3)
    negative_delta = base[topics.ORDERBOOK_DELTA] | {
        "sequence": 301,
        "changes": [{"side": "ASK", "price": "100.50", "size": "-5"}],
    }
    send(worker, topics.ORDERBOOK_DELTA, negative_delta, 4)
    assert not worker.trader.book.is_known

    crossed = base[topics.ORDERBOOK_SNAPSHOT] | {
        "sequence": 400,
        "bids": [{"price": "200", "size": "1"}],
    }
    deliver(worker, topics.ORDERBOOK_SNAPSHOT, codec.encode(topics.ORDERBOOK_SNAPSHOT, crossed), 5)
    assert worker.trader.book.sequence == 300  # refused whole: not stored, then distrusted

    other = base[topics.MARK] | {"symbol": "NOTMINE", "mark_price": "1"}
    deliver(worker, topics.MARK, codec.encode(topics.MARK, other), 6)
    assert worker.trader.mark is None  # counted and skipped, never applied

    assert worker.trader.state is SymbolState.ACTIVE
    assert worker.trader.inventory is not None
    position = worker.trader.inventory.quantity
    negative_fill = base[topics.ENGINE_EVENTS] | {"fill_quantity": "-1"}
    deliver(worker, topics.ENGINE_EVENTS, codec.encode(topics.ENGINE_EVENTS, negative_fill), 7)
    state_after: SymbolState = worker.trader.state  # re-read: the delivery changes it
    assert state_after is SymbolState.PAUSED  # quotes pulled by the dead letter
    assert worker.trader.inventory.quantity == position  # nothing of it was applied
    with make_session_factory(db_engine)() as session:
        rows = DeadLetterRepository(session).recent(symbol=symbol, uncleared_only=True)
    assert rows[0].reason == "negative_quantity"
    assert rows[0].offset == 7
    status, body = worker.commands.enable({}, "operator")
    assert status == 409
    assert body["error"]["code"] == "DEAD_LETTER"

    held = worker.edge.held
    long_id = base[topics.ENGINE_EVENTS] | {"event_id": "e" * 500}
    deliver(worker, topics.ENGINE_EVENTS, codec.encode(topics.ENGINE_EVENTS, long_id), 8)
    assert worker.edge.held == held + 1


def test_a_replayed_dead_letter_is_applied_once_cleared(worker, db_engine):
    """Clearing by replay: the worker re-applies the stored bytes through its own path."""
    reset(worker)
    fill = base_records(worker.symbol, 1)[topics.ENGINE_EVENTS]
    value = worker.codec.encode(topics.ENGINE_EVENTS, fill)
    sessions = make_session_factory(db_engine)
    with sessions.begin() as session:
        row_id = DeadLetterRepository(session).add(
            symbol=worker.symbol,
            topic=topics.ENGINE_EVENTS,
            partition=0,
            offset=10**6,
            key=worker.symbol,
            value=value,
            reason="apply_error",
            detail="a bug since fixed",
        )
        assert row_id is not None
        for row in DeadLetterRepository(session).recent(symbol=worker.symbol, uncleared_only=True):
            if row.id != row_id:  # the other tests' dead letters
                DeadLetterRepository(session).clear(row.id, how="discard", actor="t", reason="t")
        DeadLetterRepository(session).clear(row_id, how="replay", actor="t", reason="fixed")
    assert worker.trader.inventory is not None
    position = worker.trader.inventory.quantity

    renewal = worker.keeper.renew()  # the loop's renewal reads the hold (D26, D31)
    assert renewal.replays_pending
    worker.edge.on_renewal(renewal.dead_letters, renewal.replays_pending)

    assert worker.trader.inventory.quantity == position + Decimal("0.01")
    assert worker.edge.held == 0
    with sessions() as session:
        assert DeadLetterRepository(session).pending_replays(worker.symbol) == []
