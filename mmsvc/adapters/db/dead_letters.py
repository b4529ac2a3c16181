"""Dead letters: must-deliver messages whose content cannot be applied (ARCHITECTURE D24, D31).

An uncleared row holds its symbol: the worker quotes nothing while one exists,
also across restarts and moves, because the hold is this table. An operator
clears a row by a replay (the worker re-applies the stored bytes) or by an
audited discard; clearing never makes the symbol ACTIVE (it stays PAUSED).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from mmsvc.adapters.db.audit import AuditRepository
from mmsvc.adapters.db.models import DEAD_LETTER_HOW, MMDeadLetter

REASON_MAX = 64
DETAIL_MAX = 2000


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One row of mm_dead_letters."""

    id: int
    symbol: str
    topic: str
    partition: int
    offset: int
    key: str | None
    value: bytes
    reason: str
    detail: str
    created_at: datetime
    cleared_at: datetime | None
    cleared_by: str | None
    cleared_how: str | None
    clear_reason: str | None
    replayed_at: datetime | None

    @property
    def cleared(self) -> bool:
        return self.cleared_at is not None


class ClearRefusedError(Exception):
    """A clear that cannot be done: no such row, or cleared before."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class DeadLetterRepository:
    """Reads and writes mm_dead_letters inside the caller's transaction; never commits."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def add(
        self,
        *,
        symbol: str,
        topic: str,
        partition: int,
        offset: int,
        key: str | None,
        value: bytes,
        reason: str,
        detail: str,
    ) -> int | None:
        """Store one message; None when it is already stored uncleared (a redelivery)."""
        statement = (
            insert(MMDeadLetter)
            .values(
                symbol=symbol,
                topic=topic,
                kafka_partition=partition,
                kafka_offset=offset,
                key=key,
                value=value,
                reason=reason[:REASON_MAX] or "unknown",
                detail=detail[:DETAIL_MAX],
            )
            .on_conflict_do_nothing(
                index_elements=["topic", "kafka_partition", "kafka_offset"],
                index_where=MMDeadLetter.cleared_at.is_(None),
            )
            .returning(MMDeadLetter.id)
        )
        return self._session.execute(statement).scalar_one_or_none()

    def get(self, dead_letter_id: int, *, for_update: bool = False) -> DeadLetter | None:
        statement = (
            select(MMDeadLetter)
            .where(MMDeadLetter.id == dead_letter_id)
            .execution_options(populate_existing=True)
        )
        if for_update:
            statement = statement.with_for_update()
        row = self._session.scalars(statement).one_or_none()
        return None if row is None else _record(row)

    def recent(
        self, *, symbol: str | None = None, uncleared_only: bool = False, limit: int = 100
    ) -> list[DeadLetter]:
        """The newest first, for one symbol or all."""
        statement = select(MMDeadLetter).order_by(MMDeadLetter.id.desc()).limit(limit)
        if symbol is not None:
            statement = statement.where(MMDeadLetter.symbol == symbol)
        if uncleared_only:
            statement = statement.where(MMDeadLetter.cleared_at.is_(None))
        return [_record(row) for row in self._session.scalars(statement)]

    def uncleared_count(self, symbol: str) -> int:
        """How many dead letters hold ``symbol`` (0: no hold)."""
        statement = (
            select(func.count())
            .select_from(MMDeadLetter)
            .where(MMDeadLetter.symbol == symbol, MMDeadLetter.cleared_at.is_(None))
        )
        return int(self._session.execute(statement).scalar_one())

    def pending_replays(self, symbol: str) -> list[DeadLetter]:
        """Rows cleared by a replay the symbol's worker has not re-applied yet, oldest first."""
        statement = (
            select(MMDeadLetter)
            .where(
                MMDeadLetter.symbol == symbol,
                MMDeadLetter.cleared_how == "replay",
                MMDeadLetter.replayed_at.is_(None),
            )
            .order_by(MMDeadLetter.id)
        )
        return [_record(row) for row in self._session.scalars(statement)]

    def mark_replayed(self, dead_letter_id: int) -> None:
        statement = (
            update(MMDeadLetter)
            .where(MMDeadLetter.id == dead_letter_id, MMDeadLetter.replayed_at.is_(None))
            .values(replayed_at=func.now())
        )
        self._session.execute(statement)

    def clear(self, dead_letter_id: int, *, how: str, actor: str, reason: str) -> DeadLetter:
        """Clear one uncleared row by ``how`` (replay or discard), audited, or ClearRefusedError."""
        if how not in DEAD_LETTER_HOW:
            raise ValueError(f"how must be one of {DEAD_LETTER_HOW}")
        current = self.get(dead_letter_id, for_update=True)
        if current is None:
            raise ClearRefusedError("NOT_FOUND", f"no dead letter {dead_letter_id}")
        if current.cleared:
            raise ClearRefusedError(
                "ALREADY_CLEARED",
                f"dead letter {dead_letter_id} was cleared ({current.cleared_how}) before",
            )
        statement = (
            update(MMDeadLetter)
            .where(MMDeadLetter.id == dead_letter_id)
            .values(cleared_at=func.now(), cleared_by=actor, cleared_how=how, clear_reason=reason)
        )
        self._session.execute(statement)
        AuditRepository(self._session).record(
            actor,
            f"dead_letter_{how}",
            current.symbol,
            {
                "dead_letter_id": dead_letter_id,
                "topic": current.topic,
                "partition": current.partition,
                "offset": current.offset,
                "dead_letter_reason": current.reason,
                "reason": reason,
            },
        )
        cleared = self.get(dead_letter_id)
        if cleared is None:  # the row was locked and updated above: it cannot be gone
            raise LookupError(f"dead letter {dead_letter_id} vanished while being cleared")
        return cleared


def _record(row: MMDeadLetter) -> DeadLetter:
    return DeadLetter(
        id=row.id,
        symbol=row.symbol,
        topic=row.topic,
        partition=row.kafka_partition,
        offset=row.kafka_offset,
        key=row.key,
        value=bytes(row.value),
        reason=row.reason,
        detail=row.detail,
        created_at=row.created_at,
        cleared_at=row.cleared_at,
        cleared_by=row.cleared_by,
        cleared_how=row.cleared_how,
        clear_reason=row.clear_reason,
        replayed_at=row.replayed_at,
    )
