"""The admin API steering a symbol another host owns, through the commands table (D28).

No supervisor runs here: the symbol's lease names another host, and the test
plays that host's supervisor on the table (claim, answer) or leaves it
silent. The API's statuses and error shapes are the ones a local supervisor
gives.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session, sessionmaker

from mmsvc.adapters.db import commands, leases
from mmsvc.adapters.db.engine import make_session_factory
from mmsvc.adapters.db.records import RiskTrigger, SymbolState
from mmsvc.adapters.db.states import KillFlagRepository
from tests.fixtures.waiting import wait_for
from tests.integration.admin.conftest import OPERATE, Admin, seed_config

pytestmark = pytest.mark.integration

OTHER_HOST = "host-elsewhere"


def owned_elsewhere(db_engine: Engine, symbol: str) -> None:
    seed_config(db_engine, symbol)
    with Session(db_engine) as session, session.begin():
        leases.take(session, symbol, f"{OTHER_HOST}/4242", 60.0)


def play_owner(
    sessions: sessionmaker[Session], answer: Callable[[commands.QueuedCommand], commands.Answer]
) -> tuple[threading.Thread, list[commands.QueuedCommand]]:
    """The other host's supervisor: claims one command and answers it."""
    seen: list[commands.QueuedCommand] = []

    def run() -> None:
        def claimed() -> list[commands.QueuedCommand]:
            with sessions.begin() as session:
                return commands.claim(session, OTHER_HOST)

        (queued,) = wait_for(claimed, 10, "a command for the other host", 0.02)
        seen.append(queued)
        status, body = answer(queued)
        with sessions.begin() as session:
            commands.answer(session, queued.id, status, body)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, seen


def test_a_pause_of_a_symbol_another_host_owns_is_run_there_and_answered_here(
    admin: Admin, db_engine: Engine
) -> None:
    owned_elsewhere(db_engine, "BTCUSDT")
    thread, seen = play_owner(make_session_factory(db_engine), lambda _: (200, {}))
    response = admin.call("POST", "/v1/mm-configs/BTCUSDT/pause", token=OPERATE)
    thread.join()
    assert response.status_code == 200, response.text
    assert response.json()["symbol"] == "BTCUSDT"
    (queued,) = seen
    assert (queued.command, queued.symbol, queued.target_host) == ("pause", "BTCUSDT", OTHER_HOST)
    assert queued.actor != "system"  # the caller, as on the control socket


def test_the_owners_refusal_keeps_its_status_code_and_state(
    admin: Admin, db_engine: Engine
) -> None:
    owned_elsewhere(db_engine, "BTCUSDT")
    refusal: dict[str, Any] = {
        "error": {"code": "INVALID_TRANSITION", "message": "symbol is HALTED"},
        "state": "HALTED",
    }
    thread, _ = play_owner(make_session_factory(db_engine), lambda _: (409, refusal))
    response = admin.call("POST", "/v1/mm-configs/BTCUSDT/enable", token=OPERATE)
    thread.join()
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert (error["code"], error["message"]) == ("INVALID_TRANSITION", "symbol is HALTED")


def test_a_silent_owner_answers_503_and_the_command_never_runs_later(
    admin: Admin, db_engine: Engine
) -> None:
    owned_elsewhere(db_engine, "BTCUSDT")
    response = admin.call("POST", "/v1/mm-configs/BTCUSDT/enable", token=OPERATE)
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "SUPERVISOR_UNAVAILABLE"
    with Session(db_engine) as session, session.begin():
        assert commands.claim(session, OTHER_HOST) == []  # given up: never enabled late


def test_a_kill_the_silent_owner_did_not_answer_is_recorded_here(
    admin: Admin, db_engine: Engine
) -> None:
    """D7, D30: the admin records HALTED itself; the owner's worker reads it at renewal."""
    owned_elsewhere(db_engine, "BTCUSDT")
    response = admin.call("POST", "/v1/mm/emergency/kill", body={"symbol": "BTCUSDT"})
    assert response.status_code == 200, response.text
    assert response.json()["handled_by"] == "admin"
    assert response.json()["halted"] == ["BTCUSDT"]
    with Session(db_engine) as session:
        state = session.execute(
            text("SELECT state FROM mm_states WHERE symbol = 'BTCUSDT'")
        ).scalar_one()
    assert state == SymbolState.HALTED.value


def test_a_reset_of_a_lag_kill_is_refused_while_another_member_still_lags(
    admin: Admin, db_engine: Engine
) -> None:
    """D32: the lag a KAFKA_LAG reset re-checks is every member's, not only this host's."""
    owned_elsewhere(db_engine, "BTCUSDT")
    with Session(db_engine) as session, session.begin():
        KillFlagRepository(session).set(RiskTrigger.KAFKA_LAG, reason="lag", actor="system")
    thread, seen = play_owner(
        make_session_factory(db_engine), lambda _: (200, {"kafka_lag_now_s": 42.0})
    )
    response = admin.call("POST", "/v1/mm/reset")
    thread.join()
    assert response.status_code == 409, response.text
    assert OTHER_HOST in response.json()["reason"]
    assert [q.command for q in seen] == ["ping"]
    with Session(db_engine) as session:
        assert KillFlagRepository(session).get().active
