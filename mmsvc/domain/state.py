"""The symbol state machine: PAUSED <-> ACTIVE, any -> HALTED, HALTED -> PAUSED on reset.

Each function answers whether the command may happen and what state follows; it
changes nothing itself, so the caller can persist the outcome before acting on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from mmsvc.domain.model import SymbolState


class Command(StrEnum):
    """Every command of the service, in one vocabulary for admin, supervisor and worker.

    The wire protocol carries these values as they are (``mmsvc.adapters.zmq.protocol``
    imports this enum rather than naming its own). The first five are what an operator
    or a risk guard asks of a symbol's state (see :data:`TRANSITIONS`); the others ask
    for a position to be closed, for a report, or tell the runtime that a symbol's
    config row changed.
    """

    ENABLE = "enable"  # start quoting a symbol for the first time: PAUSED -> ACTIVE
    RESUME = "resume"  # start quoting again after a pause: PAUSED -> ACTIVE
    PAUSE = "pause"  # stop quoting, keep the position: ACTIVE -> PAUSED
    KILL = "kill"  # the kill switch: cancel everything, any state -> HALTED
    RESET = "reset"  # clear a kill once its trigger no longer holds: HALTED -> PAUSED
    FLATTEN = "flatten"  # close the position with reduce-only orders
    STATUS = "status"  # a symbol's state, position and P&L
    CONFIG_CHANGED = "config_changed"  # the admin changed a symbol's config row
    CONFIG_CREATED = "config_created"  # the admin created one: spawn its worker
    CONFIG_DELETED = "config_deleted"  # the admin deleted one: stop its worker
    PING = "ping"  # liveness of the supervisor and its workers


TRANSITIONS = frozenset(
    {Command.ENABLE, Command.RESUME, Command.PAUSE, Command.KILL, Command.RESET}
)
"""The commands that move the state machine; :func:`apply` takes only these."""


@dataclass(frozen=True, slots=True)
class Transition:
    """The outcome of a command: allowed or refused with a reason, and the state after it."""

    allowed: bool
    previous: SymbolState
    state: SymbolState
    reason: str

    @property
    def changed(self) -> bool:
        """True when the state really changes (only then is mm.state.changed.v1 published)."""
        return self.allowed and self.state is not self.previous


class TransitionRefusedError(Exception):
    """A state change the guarded transition refused (D23, D30); nothing was written.

    ``current`` is the state the symbol's row holds (None when there is no row), so
    a worker that learns of a kill this way can take it up at once.
    """

    def __init__(self, current: SymbolState | None, reason: str) -> None:
        super().__init__(reason)
        self.current = current
        self.reason = reason


def _allow(previous: SymbolState, state: SymbolState, reason: str) -> Transition:
    return Transition(True, previous, state, reason)


def _refuse(previous: SymbolState, reason: str) -> Transition:
    return Transition(False, previous, previous, reason)


def activate(
    state: SymbolState,
    command: Command,
    *,
    global_kill: bool,
    instrument_known: bool = True,
    instrument_halted: bool = False,
) -> Transition:
    """enable/resume: PAUSED -> ACTIVE, refused while the global kill flag is set (D3, D4)
    or while the exchange has the instrument halted (D23: in doubt, halted)."""
    if state is SymbolState.HALTED:
        return _refuse(state, "symbol is HALTED: reset it first")
    if state is SymbolState.ACTIVE:
        return _refuse(state, "symbol is already ACTIVE")
    if global_kill:
        return _refuse(state, "the global kill switch is set: reset it first")
    if not instrument_known:
        return _refuse(state, "instrument unknown to the Metadata Service")
    if instrument_halted:
        return _refuse(state, "instrument HALTED by the exchange: wait for its resume")
    return _allow(state, SymbolState.ACTIVE, command.value)


def pause(state: SymbolState) -> Transition:
    """pause: ACTIVE -> PAUSED only."""
    if state is SymbolState.ACTIVE:
        return _allow(state, SymbolState.PAUSED, Command.PAUSE.value)
    if state is SymbolState.HALTED:
        return _refuse(state, "symbol is HALTED: reset it first")
    return _refuse(state, "symbol is already PAUSED")


def kill(state: SymbolState, reason: str) -> Transition:
    """kill switch: any state -> HALTED (a HALTED symbol stays HALTED)."""
    return _allow(state, SymbolState.HALTED, reason)


def reset(state: SymbolState, *, refusal: str | None, global_kill: bool = False) -> Transition:
    """reset: HALTED -> PAUSED once the trigger no longer holds (D9).

    ``refusal`` is the answer of ``risk.reset_refusal`` for the symbol's triggers;
    ``global_kill`` is set for a reset naming one symbol while the global flag is set.
    """
    if state is not SymbolState.HALTED:
        return _refuse(state, f"symbol is {state.value}, not HALTED")
    if global_kill:
        return _refuse(state, "the global kill switch is set: reset without a symbol")
    if refusal is not None:
        return _refuse(state, refusal)
    return _allow(state, SymbolState.PAUSED, Command.RESET.value)


def apply(
    state: SymbolState,
    command: Command,
    *,
    global_kill: bool = False,
    instrument_known: bool = True,
    instrument_halted: bool = False,
    reset_refusal: str | None = None,
    reason: str = "",
) -> Transition:
    """Dispatch a command to its rule; the single entry point for the runtime.

    A command outside :data:`TRANSITIONS` is a caller's bug, not a refusal: ValueError.
    """
    if command in (Command.ENABLE, Command.RESUME):
        return activate(
            state,
            command,
            global_kill=global_kill,
            instrument_known=instrument_known,
            instrument_halted=instrument_halted,
        )
    if command is Command.PAUSE:
        return pause(state)
    if command is Command.KILL:
        return kill(state, reason or command.value)
    if command is Command.RESET:
        return reset(state, refusal=reset_refusal, global_kill=global_kill)
    raise ValueError(f"{command.value} is not a state transition")
