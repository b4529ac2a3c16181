"""FillRepository (each event once, D1) and PositionRepository."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mmsvc.adapters.db.fills import FillRepository
from mmsvc.adapters.db.positions import PositionRepository
from mmsvc.adapters.db.records import PositionRecord, Side
from tests.integration.db.conftest import fill

pytestmark = pytest.mark.integration


def test_a_fill_is_recorded_once_however_often_it_is_replayed(db_session):
    fills = FillRepository(db_session)
    assert fills.insert_if_new(fill("ev-1")) is True
    assert fills.insert_if_new(fill("ev-1")) is False
    assert fills.list_for_symbol("BTCUSDT") == [fill("ev-1")]


def test_fills_come_back_in_the_order_they_happened_with_every_digit(db_session):
    fills = FillRepository(db_session)
    late = fill("ev-late", ts_ms=3_000, side=Side.SELL, fee=Decimal("0.12345678901234567890"))
    early = fill("ev-early", ts_ms=1_000, liquidity=None, fee_asset=None)
    same_ms_second = fill("ev-b", ts_ms=2_000)
    same_ms_first = fill("ev-a", ts_ms=2_000)
    for item in (late, early, same_ms_first, same_ms_second, fill("ev-x", symbol="ETHUSDT")):
        fills.insert_if_new(item)
    assert fills.list_for_symbol("BTCUSDT") == [early, same_ms_first, same_ms_second, late]
    assert fills.list_for_symbol("XRPUSDT") == []


def test_a_position_is_inserted_then_replaced_whole(db_session):
    positions = PositionRepository(db_session)
    assert positions.get("BTCUSDT") is None
    first = positions.upsert(
        PositionRecord("BTCUSDT", Decimal("0.5"), Decimal("65000.1"), Decimal("0"), Decimal("1.2"))
    )
    assert first.updated_at is not None
    second = positions.upsert(
        PositionRecord(
            "BTCUSDT", Decimal("-0.25"), Decimal("65100"), Decimal("-12.5"), Decimal("-0.3")
        )
    )
    assert (second.quantity, second.avg_entry_price, second.realized_pnl, second.fees_paid) == (
        Decimal("-0.25"),
        Decimal("65100"),
        Decimal("-12.5"),
        Decimal("-0.3"),
    )
    assert positions.get("BTCUSDT") == second
    assert [p.symbol for p in positions.list()] == ["BTCUSDT"]
