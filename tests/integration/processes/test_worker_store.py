"""The worker's database work against real PostgreSQL: fills are never dropped (D1)."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from mmsvc.adapters.db.configs import ConfigRepository
from mmsvc.adapters.db.engine import make_session_factory
from mmsvc.adapters.db.leases import Fenced, LeaseKeeper
from mmsvc.adapters.db.orders import OrderRepository
from mmsvc.adapters.db.positions import PositionRepository
from mmsvc.adapters.db.states import StateRepository
from mmsvc.domain.model import (
    Fill,
    KillDecision,
    Liquidity,
    NewOrder,
    OrderStatus,
    RiskTrigger,
    Side,
    SymbolState,
)
from mmsvc.domain.state import TransitionRefusedError
from mmsvc.processes.worker.store import WorkerStore

pytestmark = pytest.mark.integration


def fill(event_id: str, side: Side, price: str, quantity: str) -> Fill:
    """A maker fill with a 0.01 USDT rebate; event ids are unique per call (table-wide key)."""
    return Fill(
        f"{event_id}-{uuid.uuid4()}",
        side,
        Decimal(price),
        Decimal(quantity),
        Decimal("-0.01"),
        "USDT",
        Liquidity.MAKER,
        1_700_000_000_000,
    )


def event(f: Fill) -> dict[str, object]:
    return {
        "order_id": "o-1",
        "client_order_id": str(uuid.uuid4()),
        "quantity": str(f.quantity),
        "remaining_quantity": "0",
    }


@pytest.fixture
def sessions(db_engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(db_engine)


@pytest.fixture
def store(sessions: sessionmaker[Session]) -> WorkerStore:
    symbol = f"T{uuid.uuid4().hex[:8].upper()}"
    with sessions.begin() as session:
        ConfigRepository(session).create(symbol, "test")
    keeper = LeaseKeeper(sessions, symbol, owner="test/1")
    keeper.take()
    return WorkerStore(sessions, symbol, shadow=False, fence=keeper)


def test_a_fill_before_the_instrument_is_known_is_kept_and_rebuilds_the_position(
    store: WorkerStore,
) -> None:
    first, second = fill("e-1", Side.BUY, "100", "2"), fill("e-2", Side.SELL, "110", "0.5")
    assert store.record_fill(first, event(first), None, Decimal(0)) is True
    assert store.record_fill(second, event(second), None, Decimal(0)) is True
    inventory, fees = store.rebuild_inventory("BTC")
    assert inventory.quantity == Decimal("1.5")
    assert inventory.realized_pnl == Decimal("5") + Decimal("0.02")  # 0.5 x (110 - 100) + rebates
    assert fees == Decimal("-0.02")


def test_the_same_fill_twice_is_recorded_once(store: WorkerStore) -> None:
    first = fill("e-1", Side.BUY, "100", "2")
    assert store.record_fill(first, event(first), None, Decimal(0)) is True
    assert store.record_fill(first, event(first), None, Decimal(0)) is False
    inventory, _ = store.rebuild_inventory("BTC")
    assert inventory.quantity == Decimal("2")


def test_a_fill_with_a_known_instrument_writes_the_position_in_the_same_transaction(
    store: WorkerStore, sessions: sessionmaker[Session]
) -> None:
    first = fill("e-1", Side.BUY, "100", "2")
    inventory, _ = store.rebuild_inventory("BTC")
    inventory.apply(first)
    store.record_fill(first, event(first), inventory, Decimal("-0.01"))
    with sessions() as session:
        position = PositionRepository(session).get(store.symbol)
    assert position is not None
    assert position.quantity == Decimal("2")
    assert position.avg_entry_price == Decimal("100")


def _halt_from_outside(sessions: sessionmaker[Session], symbol: str) -> None:
    """The admin's kill for a worker not yet connected: straight to PostgreSQL (D23)."""
    with sessions.begin() as session:
        StateRepository(session).set(symbol, SymbolState.PAUSED, reason="created", actor="admin")
        StateRepository(session).set(
            symbol, SymbolState.HALTED, reason="kill", actor="admin", trigger=RiskTrigger.MANUAL
        )


def test_enable_over_a_kill_recorded_in_postgresql_is_refused_and_changes_nothing(
    store: WorkerStore, sessions: sessionmaker[Session]
) -> None:
    _halt_from_outside(sessions, store.symbol)
    with pytest.raises(TransitionRefusedError):
        store.enable(actor="ops")
    assert store.recorded_state() == (SymbolState.HALTED, [RiskTrigger.MANUAL])
    config = store.load_config()
    assert config is not None
    assert config.enabled is False  # the enable's config write rolled back


def test_rows_awaiting_their_final_event_come_back_after_a_restart(store: WorkerStore) -> None:
    placed, unknown = str(uuid.uuid4()), str(uuid.uuid4())
    order = NewOrder(Side.BUY, Decimal("99"), Decimal("1"), 0)
    store.insert_pending([(placed, order), (unknown, order)])
    store.order_status(placed, "NEW", order_id=f"o-{placed}")
    store.order_status(placed, "CANCELED")  # a DELETE answered 200: no engine event yet
    live = {o.client_order_id: o for o in store.live_orders()}
    assert live[placed].status is OrderStatus.CANCELED
    assert live[placed].is_open
    assert live[unknown].status is OrderStatus.UNKNOWN  # PENDING: perhaps sent, never answered
    store.order_status(placed, "CANCELED", final_event=True)
    assert [str(c) for c in store.unsettled_order_ids()] == [unknown]


# ------------------------------------------------- the lease's fence (D26, D30, D32)


def _taken_over(sessions: sessionmaker[Session], store: WorkerStore) -> LeaseKeeper:
    """Another owner takes the symbol over after the store's lease ran out (epoch + 1)."""
    with sessions.begin() as session:
        session.execute(
            text(
                "UPDATE mm_leases SET lease_expires_at = now() - interval '1 second'"
                " WHERE symbol = :symbol"
            ),
            {"symbol": store.symbol},
        )
    successor = LeaseKeeper(sessions, store.symbol, owner="test/2")
    successor.take()
    return successor


def _rows(sessions: sessionmaker[Session], symbol: str) -> list[tuple[str, int | None]]:
    with sessions() as session:
        return [
            (str(o.client_order_id), o.epoch) for o in OrderRepository(session).unsettled(symbol)
        ]


def test_pending_rows_carry_the_epoch_of_the_lease_that_wrote_them(
    store: WorkerStore, sessions: sessionmaker[Session]
) -> None:
    cid = str(uuid.uuid4())
    store.insert_pending([(cid, NewOrder(Side.BUY, Decimal("99"), Decimal("1"), 0))])
    with sessions() as session:
        epoch = session.execute(
            text("SELECT epoch FROM mm_leases WHERE symbol = :s"), {"s": store.symbol}
        ).scalar_one()
    assert _rows(sessions, store.symbol) == [(cid, epoch)]


def test_a_fenced_out_store_writes_nothing_under_its_stale_epoch(
    store: WorkerStore, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:  # a state row to leave untouched
        StateRepository(session).set(
            store.symbol, SymbolState.PAUSED, reason="created", actor="ops"
        )
    _taken_over(sessions, store)
    order = NewOrder(Side.BUY, Decimal("99"), Decimal("1"), 0)
    with pytest.raises(Fenced):
        store.insert_pending([(str(uuid.uuid4()), order)])
    assert _rows(sessions, store.symbol) == []
    first = fill("e-1", Side.BUY, "100", "2")
    with pytest.raises(Fenced):
        store.record_fill(first, event(first), None, Decimal(0))
    assert store.rebuild_inventory("BTC")[0].quantity == 0
    with pytest.raises(Fenced):
        store.enable(actor="ops")
    with pytest.raises(Fenced):
        store.stale_episode("stale", Decimal(0), Decimal(0))
    assert store.recorded_state() == (SymbolState.PAUSED, [])


def test_a_kill_is_recorded_even_by_a_fenced_out_store(
    store: WorkerStore, sessions: sessionmaker[Session]
) -> None:
    with sessions.begin() as session:
        StateRepository(session).set(store.symbol, SymbolState.ACTIVE, reason="enable", actor="ops")
    _taken_over(sessions, store)
    kill = KillDecision(RiskTrigger.EXPOSURE, "over the limit")
    assert store.halt(kill, actor="system", position=Decimal(0), pnl=Decimal(0), publish=True)
    assert store.recorded_state() == (SymbolState.HALTED, [RiskTrigger.EXPOSURE])


def test_the_new_owner_writes_under_its_own_epoch(
    store: WorkerStore, sessions: sessionmaker[Session]
) -> None:
    successor = _taken_over(sessions, store)
    assert successor.epoch is not None
    heir = WorkerStore(sessions, store.symbol, shadow=False, fence=successor)
    cid = str(uuid.uuid4())
    heir.insert_pending([(cid, NewOrder(Side.SELL, Decimal("101"), Decimal("1"), 0))])
    assert _rows(sessions, store.symbol) == [(cid, successor.epoch)]
