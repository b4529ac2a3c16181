"""Per-symbol configs (spec: Per-Symbol Configuration), every write audited (D5)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from mmsvc.adapters.db.audit import AuditRepository
from mmsvc.adapters.db.models import MMConfig as Row
from mmsvc.adapters.db.records import CONFIG_FIELDS, ConfigFields, ConfigRecord
from mmsvc.domain.symbol_config import MMConfig, field_values


class ConfigRepository:
    """Reads and writes mm_configs inside the caller's transaction; never commits."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._audit = AuditRepository(session)

    def list(self) -> list[ConfigRecord]:
        """Every config, by symbol."""
        statement = select(Row).order_by(Row.symbol)
        rows = self._session.scalars(statement.execution_options(populate_existing=True))
        return [_record(row) for row in rows]

    def get(self, symbol: str, *, for_update: bool = False) -> ConfigRecord | None:
        """The config of `symbol`, or None; `for_update` locks the row until commit."""
        # populate_existing: a row read again must show what the database holds now.
        statement = (
            select(Row).where(Row.symbol == symbol).execution_options(populate_existing=True)
        )
        if for_update:
            statement = statement.with_for_update()
        row = self._session.scalars(statement).one_or_none()
        return None if row is None else _record(row)

    def create(
        self, symbol: str, actor: str, fields: ConfigFields | Mapping[str, Any] | None = None
    ) -> ConfigRecord:
        """Insert a config; omitted fields take the model's defaults; IntegrityError if it exists.

        The values are checked against the model first (ValueError naming the field).
        """
        if not isinstance(fields, ConfigFields):
            fields = ConfigFields(**(fields or {}))
        config = MMConfig(symbol=symbol, **field_values(fields))
        values = {**field_values(config), "updated_by": actor}
        statement = insert(Row).values(symbol=config.symbol, **values).returning(Row)
        created = _record(self._session.scalars(statement).one())
        self._audit.record(actor, "config.create", symbol, {"new": field_values(created)})
        return created

    def update(self, symbol: str, actor: str, changes: Mapping[str, Any]) -> ConfigRecord | None:
        """Apply `changes` and audit old and new values of what changed; None if no such symbol.

        The config after the change is checked against the model (ValueError naming the field).
        """
        old = self.get(symbol, for_update=True)
        if old is None:
            return None
        before = field_values(old)
        after = field_values(MMConfig(symbol=symbol, **{**before, **changes}))
        moved = {key: after[key] for key in changes if before[key] != after[key]}
        if not moved:
            return old
        statement = (
            update(Row)
            .where(Row.symbol == symbol)
            .values(**moved, updated_by=actor, updated_at=func.now())
            .returning(Row)
        )
        new = _record(self._session.scalars(statement).one())
        after = field_values(new)
        self._audit.record(
            actor,
            "config.update",
            symbol,
            {"old": {key: before[key] for key in moved}, "new": {key: after[key] for key in moved}},
        )
        return new

    def delete(self, symbol: str, actor: str) -> bool:
        """Delete the config (its state row goes with it); False if there was none."""
        statement = delete(Row).where(Row.symbol == symbol).returning(Row)
        row = self._session.scalars(statement).one_or_none()
        if row is None:
            return False
        self._audit.record(actor, "config.delete", symbol, {"old": field_values(_record(row))})
        return True


def _record(row: Row) -> ConfigRecord:
    """The row as a value, every config field mapped by the model's field list."""
    values = {name: getattr(row, name) for name in CONFIG_FIELDS}
    return ConfigRecord(
        symbol=row.symbol,
        **values,
        created_at=row.created_at,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )
