"""A worker's lease renewal as its loop runs it: kills recorded elsewhere land (D26, D30)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from mmsvc.adapters.db.engine import make_session_factory
from mmsvc.adapters.db.records import RiskTrigger as DbTrigger
from mmsvc.adapters.db.records import SymbolState as DbState
from mmsvc.adapters.db.states import KillFlagRepository, StateRepository
from mmsvc.domain.model import RiskTrigger, SymbolState
from mmsvc.processes.worker.main import Worker
from tests.fixtures.worker import in_process_worker

pytestmark = pytest.mark.integration


@pytest.fixture
def worker(
    database_url: str, db_engine: Engine, registry_url: str, redis_url: str, tmp_path: Path
) -> Iterator[Worker]:
    """An ACTIVE worker as its process wires it, holding its lease; no sockets, no orders."""
    with in_process_worker(
        database_url=database_url,
        db_engine=db_engine,
        registry_url=registry_url,
        redis_url=redis_url,
        run_dir=tmp_path,
        prefix="L",
    ) as w:
        yield w


def _renew_now(worker: Worker) -> None:
    worker.keeper._next_renewal = 0.0  # due now, as a second later in the loop
    worker._check_fence()


def test_a_halted_row_written_straight_to_postgres_lands_at_the_next_renewal(
    worker: Worker, db_engine: Engine
) -> None:
    with make_session_factory(db_engine).begin() as session:  # the break-glass kill (D30)
        StateRepository(session).set(
            worker.symbol, DbState.HALTED, reason="kill", actor="ops", trigger=DbTrigger.MANUAL
        )
    _renew_now(worker)
    assert worker.trader.state is SymbolState.HALTED
    assert not worker.fenced


def test_the_kill_flag_lands_at_the_next_renewal_and_is_recorded(
    worker: Worker, db_engine: Engine
) -> None:
    sessions = make_session_factory(db_engine)
    with sessions.begin() as session:
        KillFlagRepository(session).set(DbTrigger.MANUAL, reason="emergency", actor="ops")
    try:
        _renew_now(worker)
        assert worker.trader.state is SymbolState.HALTED
        assert worker.store.recorded_state() == (SymbolState.HALTED, [RiskTrigger.MANUAL])
    finally:
        with sessions.begin() as session:
            KillFlagRepository(session).clear(reason="test over", actor="test")


def test_a_renewal_that_meets_a_newer_epoch_fences_the_worker_out(
    worker: Worker, db_engine: Engine
) -> None:
    with make_session_factory(db_engine).begin() as session:
        session.execute(  # a takeover committed while this worker was away
            text("UPDATE mm_leases SET epoch = epoch + 1, owner = 'other/1' WHERE symbol = :s"),
            {"s": worker.symbol},
        )
    _renew_now(worker)
    assert worker.fenced
    assert not worker.running
    assert not worker.keeper.may_place()
