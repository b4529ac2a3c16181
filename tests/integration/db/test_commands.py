"""Commands between hosts on real PostgreSQL: queue, NOTIFY, claim once, answer, give up (D28).

Each test commits through its own sessions (the table is a channel between
processes) with host names of its own, and deletes its rows afterwards.
"""

from __future__ import annotations

import itertools
import threading
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, delete, text
from sqlalchemy.orm import Session, sessionmaker

from mmsvc.adapters.db import commands
from mmsvc.adapters.db.engine import make_session_factory
from mmsvc.adapters.db.listen import RECONNECTED, Listener
from mmsvc.adapters.db.models import MMCommand
from mmsvc.adapters.db.records import RiskTrigger
from mmsvc.adapters.db.states import KillFlagRepository
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.integration

_numbers = itertools.count(1)


@pytest.fixture
def sessions(db_engine: Engine) -> sessionmaker[Session]:
    return make_session_factory(db_engine)


@pytest.fixture
def host(db_engine: Engine) -> Iterator[str]:
    """A host name no other test uses; its commands are deleted afterwards."""
    name = f"cmd-host-{next(_numbers)}"
    yield name
    with Session(db_engine) as session, session.begin():
        session.execute(delete(MMCommand).where(MMCommand.target_host.like(f"{name}%")))


@pytest.fixture
def listener(database_url: str) -> Iterator[Listener]:
    channels = (commands.COMMANDS_CHANNEL, commands.KILL_SWITCH_CHANNEL)
    name = f"mmsvc-test-listen-{uuid.uuid4().hex[:8]}"
    listening = Listener(database_url, channels, application_name=name)
    listening.start()
    wait_for(lambda: RECONNECTED in listening.drain(), 10, "the listener connected")
    yield listening
    listening.stop()


def heard(listener: Listener, wanted: tuple[str, str]) -> bool:
    return wanted in listener.drain()


def queue(sessions: sessionmaker[Session], host: str, command: str = "enable") -> int:
    with sessions.begin() as session:
        return commands.submit(
            session, host, command, actor="ops", symbol="BTCUSDT", args={"reason": command}
        )


def claim(sessions: sessionmaker[Session], host: str, **kw: float) -> list[int]:
    with sessions.begin() as session:
        return [c.id for c in commands.claim(session, host, **kw)]


def test_a_queued_command_wakes_its_host_at_commit_and_runs_once(
    sessions: sessionmaker[Session], host: str, listener: Listener
) -> None:
    with sessions.begin() as session:
        command_id = commands.submit(
            session, host, "pause", actor="ops", symbol="ETHUSDT", reason="why"
        )
        assert listener.drain() == []  # nothing before the commit
    wait_for(lambda: heard(listener, (commands.COMMANDS_CHANNEL, host)), 5, "the NOTIFY")

    with sessions.begin() as session:
        claimed = commands.claim(session, host)
    assert [(c.id, c.command, c.symbol, c.actor, c.reason) for c in claimed] == [
        (command_id, "pause", "ETHUSDT", "ops", "why")
    ]
    assert claim(sessions, host) == []  # the NOTIFY and the poll both woke it: it runs once


def test_a_host_claims_only_its_own_commands(sessions: sessionmaker[Session], host: str) -> None:
    mine = queue(sessions, host)
    queue(sessions, f"{host}-other")
    assert claim(sessions, host) == [mine]


def test_the_waiting_admin_gets_the_answer_the_owner_wrote(
    sessions: sessionmaker[Session], host: str
) -> None:
    def owner() -> None:  # another host's supervisor: claims and answers
        ids = wait_for(lambda: claim(sessions, host), 5, "a command to claim", 0.02)
        with sessions.begin() as session:
            commands.answer(session, ids[0], 200, {"symbol": "BTCUSDT", "state": "ACTIVE"})

    thread = threading.Thread(target=owner)
    thread.start()
    remote = commands.RemoteControl(sessions)
    answer = remote.request(commands.Order(host, "enable", "BTCUSDT"), actor="ops", timeout_s=5)
    thread.join()
    assert answer == (200, {"symbol": "BTCUSDT", "state": "ACTIVE"})


def test_a_command_nobody_took_in_time_is_given_up_and_never_runs(
    sessions: sessionmaker[Session], host: str
) -> None:
    remote = commands.RemoteControl(sessions)
    with pytest.raises(commands.RemoteUnanswered):
        remote.request(commands.Order(host, "enable", "BTCUSDT"), actor="ops", timeout_s=0.2)
    assert claim(sessions, host) == []  # a late supervisor does not enable it


def test_a_late_answer_to_a_taken_command_is_still_taken(
    sessions: sessionmaker[Session], host: str
) -> None:
    command_id = queue(sessions, host)
    assert claim(sessions, host) == [command_id]
    with sessions.begin() as session:
        assert not commands.give_up(session, command_id, "admin timed out")  # already taken
        assert commands.answer(session, command_id, 200, {"ok": True})
        assert not commands.answer(session, command_id, 500, {})  # answered once
    with sessions() as session:
        assert commands.answers(session, [command_id]) == {command_id: (200, {"ok": True})}


def test_a_stale_command_is_expired_with_504_instead_of_run(
    sessions: sessionmaker[Session], host: str
) -> None:
    command_id = queue(sessions, host)
    assert claim(sessions, host, max_age_s=0) == []
    with sessions.begin() as session:
        assert commands.expire(session, host, max_age_s=0) == [command_id]
    with sessions() as session:
        status, body = commands.answers(session, [command_id])[command_id]
    assert (status, body["error"]["code"]) == (504, "EXPIRED")


def test_every_kill_flag_change_is_broadcast_at_commit(
    sessions: sessionmaker[Session], listener: Listener
) -> None:
    try:
        with sessions.begin() as session:
            KillFlagRepository(session).set(RiskTrigger.MANUAL, reason="test", actor="ops")
            assert listener.drain() == []
        wait_for(lambda: heard(listener, (commands.KILL_SWITCH_CHANNEL, "set")), 5, "set")
    finally:
        with sessions.begin() as session:
            KillFlagRepository(session).clear(reason="test", actor="ops")
    wait_for(lambda: heard(listener, (commands.KILL_SWITCH_CHANNEL, "clear")), 5, "clear")


def test_the_listener_reconnects_after_its_connection_is_cut(
    sessions: sessionmaker[Session], host: str, listener: Listener
) -> None:
    with sessions.begin() as session:
        cut = session.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = :name"
            ),
            {"name": listener.application_name},
        ).scalar_one()
    assert cut >= 1
    wait_for(lambda: heard(listener, RECONNECTED), 15, "the listener reconnected")
    queue(sessions, host)
    wait_for(lambda: heard(listener, (commands.COMMANDS_CHANNEL, host)), 5, "a NOTIFY again")


def test_old_commands_are_pruned(sessions: sessionmaker[Session], host: str) -> None:
    command_id = queue(sessions, host)
    with sessions.begin() as session:
        assert commands.prune(session, older_than_s=0) >= 1
    with sessions() as session:
        assert commands.answers(session, [command_id]) == {}
        assert session.get(MMCommand, command_id) is None
