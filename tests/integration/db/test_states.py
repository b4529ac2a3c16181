"""StateRepository and the global kill flag (ARCHITECTURE D3, D7, D9)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mmsvc.adapters.db import transitions
from mmsvc.adapters.db.audit import AuditRepository
from mmsvc.adapters.db.configs import ConfigRepository
from mmsvc.adapters.db.records import RiskTrigger, SymbolState
from mmsvc.adapters.db.states import KillFlagRepository, StateRepository, TransitionRefusedError

pytestmark = pytest.mark.integration


def state_of(states: StateRepository, symbol: str) -> SymbolState:
    """The state of a symbol that has a state row."""
    record = states.get(symbol)
    assert record is not None
    return record.state


def test_the_first_state_of_a_new_symbol_has_no_previous(db_session):
    ConfigRepository(db_session).create("BTCUSDT", "alice")
    change = StateRepository(db_session).set(
        "BTCUSDT", SymbolState.PAUSED, reason="created", actor="alice"
    )
    assert change.previous is None
    assert change.changed
    assert change.current.state is SymbolState.PAUSED
    assert change.current.actor == "alice"


def test_set_reports_whether_the_state_really_changed(db_session, btc):
    states = StateRepository(db_session)
    assert states.set(btc, SymbolState.ACTIVE, reason="enable", actor="ops").changed
    again = states.set(btc, SymbolState.ACTIVE, reason="enable", actor="ops")
    assert again.previous is SymbolState.ACTIVE
    assert not again.changed


def test_a_halt_keeps_its_trigger_and_a_reset_clears_it(db_session, btc):
    states = StateRepository(db_session)
    states.set(
        btc,
        SymbolState.HALTED,
        reason="kill switch",
        actor="system",
        trigger=RiskTrigger.LOSS,
        trigger_detail="pnl -501 < -500",
    )
    halted = states.get(btc)
    assert halted is not None
    assert (halted.state, halted.trigger, halted.trigger_detail) == (
        SymbolState.HALTED,
        RiskTrigger.LOSS,
        "pnl -501 < -500",
    )
    reset = states.set(btc, SymbolState.PAUSED, reason="reset", actor="ops", leave_halted=True)
    assert reset.previous is SymbolState.HALTED
    assert (reset.current.trigger, reset.current.trigger_detail) == (None, None)


def test_halting_without_a_trigger_is_refused(db_session, btc):
    with pytest.raises(IntegrityError), db_session.begin_nested():
        StateRepository(db_session).set(btc, SymbolState.HALTED, reason="?", actor="system")


def test_a_state_for_a_symbol_without_config_is_refused(db_session):
    with pytest.raises(IntegrityError), db_session.begin_nested():
        StateRepository(db_session).set("BTCUSDT", SymbolState.PAUSED, reason="?", actor="x")


def test_startup_pauses_active_symbols_and_leaves_halted_ones_halted(db_session):
    configs, states = ConfigRepository(db_session), StateRepository(db_session)
    for symbol in ("AAAUSDT", "BBBUSDT", "CCCUSDT", "DDDUSDT"):
        configs.create(symbol, "alice")
    states.set("AAAUSDT", SymbolState.ACTIVE, reason="enable", actor="ops")
    states.set("BBBUSDT", SymbolState.ACTIVE, reason="enable", actor="ops")
    states.set("CCCUSDT", SymbolState.PAUSED, reason="pause", actor="ops")
    states.set(
        "DDDUSDT", SymbolState.HALTED, reason="kill", actor="system", trigger=RiskTrigger.EXPOSURE
    )
    changed = states.set_all_paused_at_startup(reason="service start")
    assert changed == ["AAAUSDT", "BBBUSDT"]
    by_symbol = {state.symbol: state for state in states.list()}
    assert by_symbol["AAAUSDT"].state is SymbolState.PAUSED
    assert by_symbol["AAAUSDT"].reason == "service start"
    assert by_symbol["AAAUSDT"].actor == "system"
    assert by_symbol["CCCUSDT"].reason == "pause"
    assert by_symbol["DDDUSDT"].state is SymbolState.HALTED
    assert by_symbol["DDDUSDT"].trigger is RiskTrigger.EXPOSURE
    assert states.set_all_paused_at_startup(reason="service start") == []


def test_a_worker_restart_pauses_only_an_active_symbol(db_session, btc):
    states = StateRepository(db_session)
    states.set(btc, SymbolState.ACTIVE, reason="enable", actor="ops")
    assert states.pause_if_active(btc, reason="worker restart", actor="supervisor")
    assert state_of(states, btc) is SymbolState.PAUSED
    assert not states.pause_if_active(btc, reason="worker restart", actor="supervisor")
    states.set(btc, SymbolState.HALTED, reason="k", actor="system", trigger=RiskTrigger.MANUAL)
    assert not states.pause_if_active(btc, reason="worker restart", actor="supervisor")
    assert state_of(states, btc) is SymbolState.HALTED


def test_lock_returns_the_row_and_none_for_an_unknown_symbol(db_session, btc):
    states = StateRepository(db_session)
    locked = states.lock(btc)
    assert locked is not None
    assert locked.state is SymbolState.PAUSED
    assert states.lock("XRPUSDT") is None


def test_the_kill_flag_starts_cleared(db_session):
    flag = KillFlagRepository(db_session).get()
    assert not flag.active
    assert flag.trigger is None


def test_the_kill_flag_is_set_once_and_cleared_with_actor_and_reason(db_session):
    flags = KillFlagRepository(db_session)
    assert flags.set(RiskTrigger.KAFKA_LAG, reason="lag 12s > 10s", actor="supervisor")
    assert not flags.set(RiskTrigger.MANUAL, reason="again", actor="ops")
    flag = flags.get()
    assert (flag.active, flag.trigger, flag.reason, flag.actor) == (
        True,
        RiskTrigger.KAFKA_LAG,
        "lag 12s > 10s",
        "supervisor",
    )
    assert flags.clear(reason="reset", actor="ops")
    assert not flags.clear(reason="reset", actor="ops")
    cleared = flags.get()
    assert (cleared.active, cleared.trigger, cleared.actor) == (False, None, "ops")
    actions = [entry.action for entry in AuditRepository(db_session).recent()]
    assert actions[:2] == ["kill_switch.clear", "kill_switch.set"]


def test_only_a_global_trigger_can_set_the_kill_flag(db_session):
    with pytest.raises(IntegrityError), db_session.begin_nested():
        KillFlagRepository(db_session).set(RiskTrigger.LOSS, reason="?", actor="ops")


def _state_of(session: Session, symbol: str) -> SymbolState:
    record = StateRepository(session).get(symbol)
    assert record is not None
    return record.state


def _halt(session: Session, symbol: str) -> None:
    StateRepository(session).set(
        symbol, SymbolState.HALTED, reason="kill", actor="admin", trigger=RiskTrigger.MANUAL
    )


def test_enable_never_overwrites_a_halt_recorded_for_a_worker_not_yet_connected(db_session, btc):
    _halt(db_session, btc)  # the admin's kill, straight to PostgreSQL (D23 scenario 5)
    with pytest.raises(TransitionRefusedError) as refused:
        transitions.activate(db_session, btc, reason="enable", actor="ops", shadow=False)
    assert refused.value.current is SymbolState.HALTED
    with pytest.raises(TransitionRefusedError):
        StateRepository(db_session).set(btc, SymbolState.ACTIVE, reason="enable", actor="ops")
    with pytest.raises(TransitionRefusedError):
        transitions.pause(db_session, btc, reason="pause", actor="ops", shadow=False)
    assert _state_of(db_session, btc) is SymbolState.HALTED


def test_enable_is_refused_while_the_global_kill_flag_is_set(db_session, btc):
    KillFlagRepository(db_session).set(RiskTrigger.MANUAL, reason="panic", actor="ops")
    with pytest.raises(TransitionRefusedError, match="global kill"):
        transitions.activate(db_session, btc, reason="enable", actor="ops", shadow=False)
    assert _state_of(db_session, btc) is SymbolState.PAUSED


def test_only_a_paused_row_becomes_active_and_only_a_reset_leaves_halted(db_session, btc):
    change = transitions.activate(db_session, btc, reason="enable", actor="ops", shadow=False)
    assert change.current.state is SymbolState.ACTIVE
    with pytest.raises(TransitionRefusedError):
        transitions.activate(db_session, btc, reason="resume", actor="ops", shadow=False)
    _halt(db_session, btc)
    with pytest.raises(TransitionRefusedError):
        transitions.reset(db_session, "NOSUCHUSDT", actor="ops", shadow=False)
    reset = transitions.reset(db_session, btc, actor="ops", shadow=False)
    assert (reset.previous, reset.current.state) == (SymbolState.HALTED, SymbolState.PAUSED)
