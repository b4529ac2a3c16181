"""mm_dead_letters (D24, D31): stored once, held until cleared, cleared once, audited; no NaN."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import insert

from mmsvc.adapters.db.audit import AuditRepository
from mmsvc.adapters.db.dead_letters import ClearRefusedError, DeadLetterRepository
from mmsvc.adapters.db.models import MMFill, MMOrder, MMPosition
from tests.integration.db.conftest import constraint_refusing

pytestmark = pytest.mark.integration


def add(repo: DeadLetterRepository, offset: int = 7, symbol: str = "BTCUSDT") -> int | None:
    return repo.add(
        symbol=symbol,
        topic="engine.event.v1",
        partition=2,
        offset=offset,
        key=symbol,
        value=b"\x00\x00\x00\x00\x01garbage",
        reason="negative_quantity",
        detail="fill_quantity '-1' must be > 0",
    )


def test_a_dead_letter_holds_its_symbol_until_cleared_and_a_redelivery_adds_none(db_session):
    repo = DeadLetterRepository(db_session)
    first = add(repo)
    assert first is not None
    assert add(repo) is None  # the same message again (a crash before its ack)
    assert repo.uncleared_count("BTCUSDT") == 1
    assert repo.uncleared_count("ETHUSDT") == 0
    [row] = repo.recent(symbol="BTCUSDT")
    assert row.value == b"\x00\x00\x00\x00\x01garbage"
    assert row.partition == 2
    assert row.offset == 7

    cleared = repo.clear(first, how="discard", actor="alice", reason="bad venue data")

    assert cleared.cleared_how == "discard"
    assert cleared.cleared_by == "alice"
    assert cleared.cleared_at is not None
    assert repo.uncleared_count("BTCUSDT") == 0
    assert repo.pending_replays("BTCUSDT") == []
    entry = AuditRepository(db_session).recent("BTCUSDT")[0]
    assert entry.action == "dead_letter_discard"
    assert entry.actor == "alice"
    with pytest.raises(ClearRefusedError) as twice:
        repo.clear(first, how="replay", actor="bob", reason="again")
    assert twice.value.code == "ALREADY_CLEARED"
    # Once cleared, the same message may be dead-lettered again (a replay that fails).
    assert add(repo) is not None


def test_a_replay_is_pending_until_the_worker_marks_it(db_session):
    repo = DeadLetterRepository(db_session)
    row_id = add(repo)
    assert row_id is not None
    repo.clear(row_id, how="replay", actor="alice", reason="fixed upstream")
    assert [r.id for r in repo.pending_replays("BTCUSDT")] == [row_id]
    repo.mark_replayed(row_id)
    assert repo.pending_replays("BTCUSDT") == []
    with pytest.raises(ClearRefusedError) as missing:
        repo.clear(row_id + 1000, how="discard", actor="alice", reason="x")
    assert missing.value.code == "NOT_FOUND"


@pytest.mark.parametrize("bad", ["NaN", "Infinity", "-Infinity"])
def test_postgresql_refuses_non_finite_money(db_session, bad):
    fill = {
        "event_id": "ev-nan",
        "symbol": "BTCUSDT",
        "order_id": "o-1",
        "client_order_id": "c-1",
        "side": "SELL",
        "price": Decimal("1"),
        "quantity": Decimal("1"),
        "fee": Decimal(bad),
        "ts_ms": 1,
    }
    assert (
        constraint_refusing(db_session, insert(MMFill).values(**fill)) == "ck_mm_fills_fee_finite"
    )
    position = insert(MMPosition).values(symbol="BTCUSDT", realized_pnl=Decimal(bad))
    assert constraint_refusing(db_session, position) == "ck_mm_positions_realized_pnl_finite"
    order = insert(MMOrder).values(
        client_order_id="00000000-0000-0000-0000-000000000001",
        symbol="BTCUSDT",
        side="BUY",
        price=Decimal("1"),
        quantity=Decimal("1"),
        filled_quantity=Decimal(bad) if bad != "-Infinity" else Decimal("NaN"),
        level=0,
    )
    assert constraint_refusing(db_session, order).startswith("ck_mm_orders_")
