"""The symbol state machine: every command from every state, allowed or refused."""

from __future__ import annotations

import pytest

from mmsvc.domain.model import SymbolState
from mmsvc.domain.state import TRANSITIONS, Command, apply

ACTIVE, PAUSED, HALTED = SymbolState.ACTIVE, SymbolState.PAUSED, SymbolState.HALTED

# (state, command) -> state after it, or None when refused (no flags set, trigger cleared)
TABLE = {
    (PAUSED, Command.ENABLE): ACTIVE,
    (PAUSED, Command.RESUME): ACTIVE,
    (PAUSED, Command.PAUSE): None,
    (PAUSED, Command.KILL): HALTED,
    (PAUSED, Command.RESET): None,
    (ACTIVE, Command.ENABLE): None,
    (ACTIVE, Command.RESUME): None,
    (ACTIVE, Command.PAUSE): PAUSED,
    (ACTIVE, Command.KILL): HALTED,
    (ACTIVE, Command.RESET): None,
    (HALTED, Command.ENABLE): None,
    (HALTED, Command.RESUME): None,
    (HALTED, Command.PAUSE): None,
    (HALTED, Command.KILL): HALTED,
    (HALTED, Command.RESET): PAUSED,
}


def test_table_covers_every_state_and_transition() -> None:
    assert set(TABLE) == {(s, c) for s in SymbolState for c in TRANSITIONS}


@pytest.mark.parametrize("command", sorted(set(Command) - TRANSITIONS))
def test_a_command_that_is_no_transition_is_a_callers_bug(command: Command) -> None:
    with pytest.raises(ValueError, match="not a state transition"):
        apply(PAUSED, command)


@pytest.mark.parametrize(("state", "command"), sorted(TABLE))
def test_transition_is_allowed_or_refused_with_a_reason(
    state: SymbolState, command: Command
) -> None:
    expected = TABLE[(state, command)]
    result = apply(state, command)
    assert result.previous is state
    if expected is None:
        assert not result.allowed
        assert result.state is state
        assert not result.changed
        assert result.reason
    else:
        assert result.allowed
        assert result.state is expected
        assert result.changed == (expected is not state)


@pytest.mark.parametrize("command", [Command.ENABLE, Command.RESUME])
def test_enable_and_resume_refused_while_the_global_kill_flag_is_set(command: Command) -> None:
    result = apply(PAUSED, command, global_kill=True)
    assert not result.allowed
    assert "global kill" in result.reason


def test_enable_refused_until_the_instrument_is_known() -> None:
    result = apply(PAUSED, Command.ENABLE, instrument_known=False)
    assert not result.allowed
    assert "instrument" in result.reason


def test_reset_refused_while_the_trigger_condition_holds() -> None:
    result = apply(HALTED, Command.RESET, reset_refusal="LOSS still holds: P&L -600")
    assert not result.allowed
    assert result.state is HALTED
    assert result.reason == "LOSS still holds: P&L -600"


def test_reset_of_one_symbol_refused_while_the_global_kill_flag_is_set() -> None:
    result = apply(HALTED, Command.RESET, global_kill=True)
    assert not result.allowed
    assert "global kill" in result.reason


def test_kill_records_its_reason_and_a_second_kill_changes_nothing() -> None:
    first = apply(ACTIVE, Command.KILL, reason="EXPOSURE")
    assert first.changed
    assert first.reason == "EXPOSURE"
    again = apply(HALTED, Command.KILL, reason="LOSS")
    assert again.allowed
    assert not again.changed
