"""State changes with their events, in one transaction (ARCHITECTURE D3, D7, D16).

A symbol's state and the ``mm.state.changed.v1`` / ``mm.risk.triggered.v1``
events that announce it are written together under the lock on the symbol's
``mm_states`` row, so an event exists exactly when its change committed and one
symbol's events are relayed in commit order. The worker, the supervisor and the
admin process (emergency kill with the supervisor down) all change states
through here, so the rule lives in one place. The caller owns the transaction.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy.orm import Session

from mmsvc.adapters.db.outbox import OutboxRepository
from mmsvc.adapters.db.records import RiskTrigger, StateChange, SymbolState
from mmsvc.adapters.db.states import KillFlagRepository, StateRepository, TransitionRefusedError
from mmsvc.adapters.kafka import events, topics


def change_state(
    session: Session,
    symbol: str,
    new_state: SymbolState,
    *,
    reason: str,
    actor: str,
    shadow: bool,
    trigger: RiskTrigger | None = None,
    detail: str | None = None,
    leave_halted: bool = False,
) -> StateChange:
    """Set the state; enqueue ``mm.state.changed.v1`` only when it really changed.

    HALTED is left only by a reset (``leave_halted``); otherwise TransitionRefusedError (D23).
    """
    change = StateRepository(session).set(
        symbol,
        new_state,
        reason=reason,
        actor=actor,
        trigger=trigger,
        trigger_detail=detail,
        leave_halted=leave_halted,
    )
    if change.changed:
        announce_state(session, symbol, change.previous, new_state, reason, actor, shadow)
    return change


def activate(
    session: Session, symbol: str, *, reason: str, actor: str, shadow: bool
) -> StateChange:
    """enable/resume: ACTIVE only if the row, read under its lock, is PAUSED and no kill flag.

    The one guarded road to ACTIVE for every writer (D23, D30): a kill recorded
    straight in PostgreSQL (for a worker not yet connected, or by the admin with
    the supervisor down) can never be overwritten by an enable. Raises
    TransitionRefusedError, writing nothing, otherwise.
    """
    current = StateRepository(session).lock(symbol)
    if current is None or current.state is not SymbolState.PAUSED:
        state = "unknown" if current is None else current.state.value
        raise TransitionRefusedError(
            None if current is None else current.state, f"symbol is {state}, not PAUSED"
        )
    if KillFlagRepository(session).get().active:
        raise TransitionRefusedError(current.state, "the global kill switch is set: reset it first")
    return change_state(
        session, symbol, SymbolState.ACTIVE, reason=reason, actor=actor, shadow=shadow
    )


def pause(session: Session, symbol: str, *, reason: str, actor: str, shadow: bool) -> StateChange:
    """pause: ACTIVE -> PAUSED; PAUSED stays; HALTED refuses (TransitionRefusedError)."""
    return change_state(
        session, symbol, SymbolState.PAUSED, reason=reason, actor=actor, shadow=shadow
    )


def reset(session: Session, symbol: str, *, actor: str, shadow: bool) -> StateChange:
    """reset: HALTED -> PAUSED, the only way out of HALTED (D9, D23)."""
    current = StateRepository(session).lock(symbol)
    if current is None or current.state is not SymbolState.HALTED:
        state = "unknown" if current is None else current.state.value
        raise TransitionRefusedError(
            None if current is None else current.state, f"symbol is {state}, not HALTED"
        )
    return change_state(
        session,
        symbol,
        SymbolState.PAUSED,
        reason="reset",
        actor=actor,
        shadow=shadow,
        leave_halted=True,
    )


def announce_state(
    session: Session,
    symbol: str,
    previous: SymbolState | None,
    new_state: SymbolState,
    reason: str,
    actor: str,
    shadow: bool,
) -> None:
    """Enqueue the ``mm.state.changed.v1`` event of a change already written."""
    record = events.state_changed(
        symbol,
        None if previous is None else previous.value,
        new_state.value,
        reason=reason,
        actor=actor,
        shadow=shadow,
    )
    OutboxRepository(session).enqueue(topics.STATE_CHANGED, symbol, record)


def record_risk_event(
    session: Session,
    symbol: str | None,
    trigger: RiskTrigger,
    *,
    detail: str,
    position_usdt: Decimal,
    pnl_usdt: Decimal,
    shadow: bool,
) -> None:
    """Enqueue one ``mm.risk.triggered.v1``; a None symbol is the all-symbols event (D7)."""
    record = events.risk_triggered(
        symbol,
        trigger.value,
        detail=detail,
        position_usdt=position_usdt,
        pnl_usdt=pnl_usdt,
        shadow=shadow,
    )
    OutboxRepository(session).enqueue(topics.RISK_TRIGGERED, symbol, record)


def halt(
    session: Session,
    symbol: str,
    trigger: RiskTrigger,
    *,
    detail: str,
    actor: str,
    shadow: bool,
    position_usdt: Decimal,
    pnl_usdt: Decimal,
    publish_risk_event: bool = True,
) -> StateChange:
    """The kill switch's record: HALTED with its trigger, plus the risk event (spec, D7).

    A symbol-wide kill publishes its own risk event; a global one (KAFKA_LAG,
    MANUAL without a symbol) publishes a single all-symbols event elsewhere and
    passes ``publish_risk_event=False`` here. A symbol already HALTED keeps its
    first trigger (the one its reset must re-check, D9) and emits nothing more.
    """
    current = StateRepository(session).lock(symbol)
    if current is not None and current.state is SymbolState.HALTED:
        return StateChange(SymbolState.HALTED, current)
    change = change_state(
        session,
        symbol,
        SymbolState.HALTED,
        reason=f"kill switch: {trigger.value}",
        actor=actor,
        shadow=shadow,
        trigger=trigger,
        detail=detail,
    )
    if publish_risk_event:
        record_risk_event(
            session,
            symbol,
            trigger,
            detail=detail,
            position_usdt=position_usdt,
            pnl_usdt=pnl_usdt,
            shadow=shadow,
        )
    return change
