"""The audit trail: who changed what, when (ARCHITECTURE D5: config changes, limit raises)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from enum import Enum
from typing import Any
from uuid import UUID

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from mmsvc.adapters.db.models import MMAudit
from mmsvc.adapters.db.records import AuditEntry


def jsonable(value: object) -> Any:
    """`value` with Decimals as strings (never floats), enums, UUIDs and times as text."""
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, Decimal | UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


class AuditRepository:
    """Appends to and reads mm_audit inside the caller's transaction."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def record(
        self, actor: str, action: str, symbol: str | None, detail: Mapping[str, object]
    ) -> int:
        """Append one entry and return its id; it commits or rolls back with the caller."""
        statement = (
            insert(MMAudit)
            .values(actor=actor, action=action, symbol=symbol, detail=jsonable(detail))
            .returning(MMAudit.id)
        )
        return self._session.execute(statement).scalar_one()

    def recent(self, symbol: str | None = None, limit: int = 100) -> list[AuditEntry]:
        """The newest entries first, for one symbol or for all."""
        statement = select(MMAudit).order_by(MMAudit.id.desc()).limit(limit)
        if symbol is not None:
            statement = statement.where(MMAudit.symbol == symbol)
        return [_entry(row) for row in self._session.scalars(statement)]


def _entry(row: MMAudit) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        ts=row.ts,
        actor=row.actor,
        action=row.action,
        symbol=row.symbol,
        detail=row.detail,
    )
