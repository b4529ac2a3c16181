"""Symbol states and the global kill flag, both kept in PostgreSQL (ARCHITECTURE D3)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, Select, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from mmsvc.adapters.db.audit import AuditRepository
from mmsvc.adapters.db.commands import KILL_SWITCH_CHANNEL, notify
from mmsvc.adapters.db.models import MMKillSwitch, MMState
from mmsvc.adapters.db.records import (
    KillFlag,
    RiskTrigger,
    StateChange,
    StateRecord,
    SymbolState,
)
from mmsvc.domain.state import TransitionRefusedError

__all__ = ["KillFlagRepository", "StateRepository", "TransitionRefusedError"]

# Named outside the class, whose `list` method would shadow the builtin.
Symbols = list[str]


class StateRepository:
    """Reads and writes mm_states inside the caller's transaction; never commits."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, symbol: str) -> StateRecord | None:
        """The state of `symbol` as last committed (or written in this transaction)."""
        row = self._session.scalars(_select(symbol)).one_or_none()
        return None if row is None else _record(row)

    def lock(self, symbol: str) -> StateRecord | None:
        """The state of `symbol`, its row locked (SELECT ... FOR UPDATE) until commit."""
        row = self._session.scalars(_select(symbol).with_for_update()).one_or_none()
        return None if row is None else _record(row)

    def list(self) -> list[StateRecord]:
        """Every symbol's state, by symbol."""
        statement = select(MMState).order_by(MMState.symbol)
        rows = self._session.scalars(statement.execution_options(populate_existing=True))
        return [_record(row) for row in rows]

    def set(
        self,
        symbol: str,
        state: SymbolState,
        *,
        reason: str,
        actor: str,
        trigger: RiskTrigger | None = None,
        trigger_detail: str | None = None,
        leave_halted: bool = False,
    ) -> StateChange:
        """Set the state under a row lock, creating the row for a new symbol (previous None).

        A HALTED row is left only by a reset (``leave_halted``): D23. Refused
        changes raise :class:`TransitionRefusedError` and write nothing.
        """
        previous = self.lock(symbol)
        if (
            previous is not None
            and previous.state is SymbolState.HALTED
            and state is not SymbolState.HALTED
            and not leave_halted
        ):
            raise TransitionRefusedError(previous.state, "symbol is HALTED: reset it first")
        if previous is None:
            previous = self._insert_paused(symbol, reason=reason, actor=actor)
            before: SymbolState | None = None
        else:
            before = previous.state
        statement = (
            update(MMState)
            .where(MMState.symbol == symbol)
            .values(
                state=state.value,
                trigger=None if trigger is None else trigger.value,
                trigger_detail=trigger_detail,
                reason=reason,
                actor=actor,
                updated_at=func.now(),
            )
            .returning(MMState)
        )
        return StateChange(before, _record(self._session.scalars(statement).one()))

    def pause_if_active(self, symbol: str, *, reason: str, actor: str) -> bool:
        """ACTIVE becomes PAUSED; PAUSED and HALTED stay as they are (worker restart, D3)."""
        return bool(self._pause_active(reason, actor, MMState.symbol == symbol))

    def set_all_paused_at_startup(self, *, reason: str, actor: str = "system") -> Symbols:
        """Every ACTIVE symbol becomes PAUSED, HALTED stays HALTED (D3); the symbols changed."""
        return self._pause_active(reason, actor)

    def _pause_active(self, reason: str, actor: str, *where: ColumnElement[bool]) -> Symbols:
        statement = (
            update(MMState)
            .where(MMState.state == SymbolState.ACTIVE.value, *where)
            .values(
                state=SymbolState.PAUSED.value, reason=reason, actor=actor, updated_at=func.now()
            )
            .returning(MMState.symbol)
        )
        return sorted(self._session.scalars(statement))

    def _insert_paused(self, symbol: str, *, reason: str, actor: str) -> StateRecord:
        # ON CONFLICT: two sessions creating one symbol meet on the row lock below.
        statement = (
            insert(MMState)
            .values(symbol=symbol, state=SymbolState.PAUSED.value, reason=reason, actor=actor)
            .on_conflict_do_nothing(index_elements=[MMState.symbol])
        )
        self._session.execute(statement)
        locked = self.lock(symbol)
        if locked is None:
            raise LookupError(f"no state row for {symbol} after insert")
        return locked


class KillFlagRepository:
    """The one-row global kill flag; set and clear are locked and audited (D3, D7, D9)."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._audit = AuditRepository(session)

    def get(self) -> KillFlag:
        """The flag as last committed; inactive when the row was never written."""
        row = self._session.get(MMKillSwitch, 1, populate_existing=True)
        return _flag(row)

    def set(self, trigger: RiskTrigger, *, reason: str, actor: str) -> bool:
        """Raise the flag; True when it was not already raised (the first trigger is kept)."""
        if self._lock().active:
            return False
        self._write(active=True, trigger=trigger, reason=reason, actor=actor)
        self._audit.record(actor, "kill_switch.set", None, {"trigger": trigger, "reason": reason})
        return True

    def clear(self, *, reason: str, actor: str) -> bool:
        """Lower the flag; True when it was raised."""
        previous = self._lock()
        if not previous.active:
            return False
        self._write(active=False, trigger=None, reason=reason, actor=actor)
        self._audit.record(
            actor, "kill_switch.clear", None, {"trigger": previous.trigger, "reason": reason}
        )
        return True

    def _lock(self) -> KillFlag:
        self._session.execute(insert(MMKillSwitch).values(id=1).on_conflict_do_nothing())
        statement = select(MMKillSwitch).where(MMKillSwitch.id == 1).with_for_update()
        row = self._session.scalars(statement.execution_options(populate_existing=True)).one()
        return _flag(row)

    def _write(self, *, active: bool, trigger: RiskTrigger | None, reason: str, actor: str) -> None:
        statement = (
            update(MMKillSwitch)
            .where(MMKillSwitch.id == 1)
            .values(
                active=active,
                trigger=None if trigger is None else trigger.value,
                reason=reason,
                actor=actor,
                updated_at=func.now(),
            )
        )
        self._session.execute(statement)
        # Every supervisor LISTENs: each learns a kill or a reset at commit, whichever
        # host's admin, supervisor or worker wrote it (D28); renewals read it as a backup.
        notify(self._session, KILL_SWITCH_CHANNEL, "set" if active else "clear")


def _select(symbol: str) -> Select[MMState]:
    # populate_existing: a row read again must show what the database holds now.
    return select(MMState).where(MMState.symbol == symbol).execution_options(populate_existing=True)


def _record(row: MMState) -> StateRecord:
    return state_record(row.symbol, row)


def state_record(symbol: str, row: Any) -> StateRecord:
    """A state row's record: an ORM row, or the columns of a joined query (the lease renewal)."""
    return StateRecord(
        symbol=symbol,
        state=SymbolState(row.state),
        trigger=None if row.trigger is None else RiskTrigger(row.trigger),
        trigger_detail=row.trigger_detail,
        reason=row.reason,
        actor=row.actor,
        updated_at=row.updated_at,
    )


def _flag(row: MMKillSwitch | None) -> KillFlag:
    if row is None:
        return KillFlag(active=False, trigger=None, reason="", actor="system", updated_at=None)
    return KillFlag(
        active=row.active,
        trigger=None if row.trigger is None else RiskTrigger(row.trigger),
        reason=row.reason,
        actor=row.actor,
        updated_at=row.updated_at,
    )
