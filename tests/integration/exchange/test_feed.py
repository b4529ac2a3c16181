"""The simulator's market data feed, consumed from Kafka with the trading core's own book (D21)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from mmsvc.adapters.kafka import topics
from mmsvc.domain.book import BookChange, BookSide, OrderBook
from tests.fixtures.kafka import TopicReader

pytestmark = pytest.mark.integration

SNAP, DELTA = topics.ORDERBOOK_SNAPSHOT, topics.ORDERBOOK_DELTA


def new_instrument(symbol: str, msgs_per_s: float) -> dict[str, Any]:
    return {
        "symbol": symbol,
        "base_asset": symbol[:4],
        "quote_asset": "USDT",
        "kind": "SPOT",
        "tick_size": "0.01",
        "lot_size": "0.1",
        "min_notional": "1",
        "mid": "100",
        "msgs_per_s": msgs_per_s,
        "volatility_bps": 20.0,
        "half_spread_ticks": 2,
        "level_step_ticks": 1,
    }


def levels(rows: list[dict[str, Any]]) -> dict[Decimal, Decimal]:
    return {Decimal(row["price"]): Decimal(row["size"]) for row in rows}


def changes(record: dict[str, Any]) -> list[BookChange]:
    return [
        BookChange(BookSide(c["side"]), Decimal(c["price"]), Decimal(c["size"]))
        for c in record["changes"]
    ]


Records = list[dict[str, Any]]


def replay_until_complete(
    reader: TopicReader, symbol: str, min_deltas: int
) -> tuple[Records, dict[int, dict[str, Any]], int]:
    """Snapshots and deltas once every delta up to some snapshot min_deltas later is in."""
    state: dict[str, Any] = {}

    def complete() -> bool:
        snaps = sorted(reader.of(SNAP, symbol=symbol), key=lambda r: r["sequence"])
        deltas = {r["sequence"]: r for r in reader.of(DELTA, symbol=symbol)}
        if not snaps:
            return False
        first = snaps[0]["sequence"]
        last = [s for s in snaps if s["sequence"] >= first + min_deltas]
        if not last or any(n not in deltas for n in range(first + 1, last[0]["sequence"] + 1)):
            return False
        state.update(snaps=snaps, deltas=deltas, last=last[0]["sequence"])
        return True

    reader.read_until(complete, 30, f"{min_deltas} deltas between two snapshots")
    return state["snaps"], state["deltas"], state["last"]


def test_deltas_applied_to_a_snapshot_reproduce_the_next_snapshots(sim, reader_factory):
    symbol = "FEEDTEST"
    reader = reader_factory([SNAP, DELTA], [symbol])
    assert sim.admin("POST", "/v1/instruments", new_instrument(symbol, 2500)).status_code == 201
    try:
        snaps, deltas, last = replay_until_complete(reader, symbol, min_deltas=3000)
    finally:
        sim.admin("PATCH", f"/v1/markets/{symbol}", {"msgs_per_s": 0}).raise_for_status()

    book = OrderBook(symbol)
    first = snaps[0]
    assert book.apply_snapshot(
        first["sequence"],
        levels(first["bids"]).items(),
        levels(first["asks"]).items(),
        first["ts_ms"],
    )
    by_sequence = {s["sequence"]: s for s in snaps}
    compared = 0
    for sequence in range(first["sequence"] + 1, last + 1):
        assert book.apply_delta(sequence, changes(deltas[sequence]), deltas[sequence]["ts_ms"])
        snapshot = by_sequence.get(sequence)
        if snapshot is not None:
            assert book.is_known
            assert book.depth(BookSide.BID) == levels(snapshot["bids"])
            assert book.depth(BookSide.ASK) == levels(snapshot["asks"])
            compared += 1
    assert compared >= 2
    assert last - first["sequence"] >= 3000
    span_s = (deltas[last]["ts_ms"] - deltas[first["sequence"] + 1]["ts_ms"]) / 1000
    assert (last - first["sequence"]) / span_s > 1000  # thousands of messages a second


@pytest.mark.usefixtures("sim")
def test_every_wire_decimal_is_on_the_grid(reader_factory):
    reader = reader_factory([SNAP, DELTA, topics.TRADES, topics.MARK], ["SOL-PERP"])
    reader.read_until(
        lambda: all(reader.of(t) for t in (SNAP, DELTA, topics.TRADES, topics.MARK)),
        15,
        "a message on every feed topic",
    )
    prices = [row["price"] for s in reader.of(SNAP) for row in s["bids"] + s["asks"]]
    prices += [c["price"] for d in reader.of(DELTA) for c in d["changes"]]
    prices += [t["price"] for t in reader.of(topics.TRADES)]
    prices += [m["mark_price"] for m in reader.of(topics.MARK)]
    prices += [m["index_price"] for m in reader.of(topics.MARK)]
    sizes = [row["size"] for s in reader.of(SNAP) for row in s["bids"] + s["asks"]]
    sizes += [t["size"] for t in reader.of(topics.TRADES)]
    assert all(len(p.split(".")[1]) == 3 for p in prices)  # tick 0.001
    assert all(len(z.split(".")[1]) == 2 for z in sizes)  # lot 0.01
    trade_ids = [t["trade_id"] for t in reader.of(topics.TRADES)]
    assert len(set(trade_ids)) == len(trade_ids)


def test_a_sequence_gap_makes_the_core_book_unknown_until_the_next_snapshot(sim, reader_factory):
    symbol = "GAPTEST"
    reader = reader_factory([SNAP, DELTA], [symbol])
    assert sim.admin("POST", "/v1/instruments", new_instrument(symbol, 200)).status_code == 201
    try:
        reader.read_until(lambda: len(reader.of(DELTA)) >= 20, 10, "20 deltas")
        skipped = sim.admin("POST", f"/v1/markets/{symbol}/gap", {"count": 1}).json()["sequence"]
        reader.read_until(
            lambda: (
                any(s["sequence"] > skipped for s in reader.of(SNAP))
                and any(d["sequence"] > skipped for d in reader.of(DELTA))
            ),
            10,
            "a snapshot and a delta after the gap",
        )
    finally:
        sim.admin("PATCH", f"/v1/markets/{symbol}", {"msgs_per_s": 0}).raise_for_status()

    assert skipped not in {d["sequence"] for d in reader.of(DELTA)}
    # Replay in feed order: a snapshot of sequence N follows the delta of sequence N.
    feed = sorted(
        [(d["sequence"], 0, d) for d in reader.of(DELTA)]
        + [(s["sequence"], 1, s) for s in reader.of(SNAP)],
        key=lambda item: item[:2],
    )
    book, known_after = OrderBook(symbol), {}
    for sequence, is_snapshot, record in feed:
        if is_snapshot:
            book.apply_snapshot(
                sequence,
                levels(record["bids"]).items(),
                levels(record["asks"]).items(),
                record["ts_ms"],
            )
        else:
            book.apply_delta(sequence, changes(record), record["ts_ms"])
        known_after[sequence] = book.is_known
    assert known_after[skipped + 1] is False
    assert book.is_known
