"""Row locks across real connections: a symbol's state and its outbox events (D16)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from mmsvc.adapters.db.configs import ConfigRepository
from mmsvc.adapters.db.outbox import OutboxRepository
from mmsvc.adapters.db.states import StateRepository

pytestmark = pytest.mark.integration

STATE_CHANGED = "mm.state.changed.v1"


def impatient(engine: Engine) -> Session:
    """A session that gives up on a row lock after 200 ms instead of waiting."""
    session = Session(engine)
    session.execute(text("SET LOCAL lock_timeout = '200ms'"))
    return session


def test_a_locked_state_row_cannot_be_locked_by_another_transaction(db_engine, committed_symbol):
    with Session(db_engine) as holder:
        assert StateRepository(holder).lock(committed_symbol) is not None
        with impatient(db_engine) as other, pytest.raises(OperationalError, match="lock"):
            StateRepository(other).lock(committed_symbol)
        # A plain read is never blocked by the lock.
        with Session(db_engine) as reader:
            assert StateRepository(reader).get(committed_symbol) is not None


def test_an_outbox_write_waits_for_the_symbols_lock_so_ids_follow_commit_order(
    db_engine, committed_symbol
):
    second_id: list[int] = []

    def enqueue_concurrently() -> None:
        with Session(db_engine) as session, session.begin():
            second_id.append(OutboxRepository(session).enqueue(STATE_CHANGED, committed_symbol, {}))

    with Session(db_engine) as first, first.begin():
        StateRepository(first).lock(committed_symbol)
        writer = threading.Thread(target=enqueue_concurrently)
        writer.start()
        writer.join(0.3)
        assert writer.is_alive(), "the second writer must wait for the first one's lock"
        first_id = OutboxRepository(first).enqueue(STATE_CHANGED, committed_symbol, {})
    writer.join(10)
    assert second_id
    assert second_id[0] > first_id


def test_the_test_session_may_commit_and_still_leaves_nothing_behind(db_session, db_engine):
    ConfigRepository(db_session).create("SAVEPOINT", "tester")
    db_session.commit()
    assert ConfigRepository(db_session).get("SAVEPOINT") is not None
    with Session(db_engine) as outsider:
        assert ConfigRepository(outsider).get("SAVEPOINT") is None
