"""Per-symbol configs (spec: Per-Symbol Configuration), every write audited (D5)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from mmsvc.adapters.db.audit import AuditRepository
from mmsvc.adapters.db.models import MMConfig
from mmsvc.adapters.db.records import CONFIG_FIELDS, ConfigFields, ConfigRecord


class ConfigRepository:
    """Reads and writes mm_configs inside the caller's transaction; never commits."""

    def __init__(self, session: Session) -> None:
        self._session = session
        self._audit = AuditRepository(session)

    def list(self) -> list[ConfigRecord]:
        """Every config, by symbol."""
        statement = select(MMConfig).order_by(MMConfig.symbol)
        rows = self._session.scalars(statement.execution_options(populate_existing=True))
        return [_record(row) for row in rows]

    def get(self, symbol: str, *, for_update: bool = False) -> ConfigRecord | None:
        """The config of `symbol`, or None; `for_update` locks the row until commit."""
        # populate_existing: a row read again must show what the database holds now.
        statement = (
            select(MMConfig)
            .where(MMConfig.symbol == symbol)
            .execution_options(populate_existing=True)
        )
        if for_update:
            statement = statement.with_for_update()
        row = self._session.scalars(statement).one_or_none()
        return None if row is None else _record(row)

    def create(self, symbol: str, actor: str, fields: ConfigFields | None = None) -> ConfigRecord:
        """Insert a config; omitted fields take the spec's defaults; IntegrityError if it exists."""
        values: dict[str, Any] = {**_only_known(fields or {}), "updated_by": actor}
        statement = insert(MMConfig).values(symbol=symbol, **values).returning(MMConfig)
        created = _record(self._session.scalars(statement).one())
        self._audit.record(actor, "config.create", symbol, {"new": _fields_of(created)})
        return created

    def update(self, symbol: str, actor: str, changes: ConfigFields) -> ConfigRecord | None:
        """Apply `changes` and audit old and new values of what changed; None if no such symbol."""
        old = self.get(symbol, for_update=True)
        if old is None:
            return None
        before = _fields_of(old)
        moved = {key: value for key, value in _only_known(changes).items() if before[key] != value}
        if not moved:
            return old
        statement = (
            update(MMConfig)
            .where(MMConfig.symbol == symbol)
            .values(**moved, updated_by=actor, updated_at=func.now())
            .returning(MMConfig)
        )
        new = _record(self._session.scalars(statement).one())
        after = _fields_of(new)
        self._audit.record(
            actor,
            "config.update",
            symbol,
            {"old": {key: before[key] for key in moved}, "new": {key: after[key] for key in moved}},
        )
        return new

    def delete(self, symbol: str, actor: str) -> bool:
        """Delete the config (its state row goes with it); False if there was none."""
        statement = delete(MMConfig).where(MMConfig.symbol == symbol).returning(MMConfig)
        row = self._session.scalars(statement).one_or_none()
        if row is None:
            return False
        self._audit.record(actor, "config.delete", symbol, {"old": _fields_of(_record(row))})
        return True


def _only_known(fields: ConfigFields) -> dict[str, Any]:
    unknown = set(fields) - set(CONFIG_FIELDS)
    if unknown:
        raise ValueError(f"unknown config fields: {', '.join(sorted(unknown))}")
    return dict(fields)


def _fields_of(record: ConfigRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in CONFIG_FIELDS}


def _record(row: MMConfig) -> ConfigRecord:
    return ConfigRecord(
        symbol=row.symbol,
        enabled=row.enabled,
        base_spread_bps=row.base_spread_bps,
        order_size_usdt=row.order_size_usdt,
        inventory_skew_factor=row.inventory_skew_factor,
        max_position_usdt=row.max_position_usdt,
        max_loss_usdt=row.max_loss_usdt,
        volatility_multiplier=row.volatility_multiplier,
        num_levels=row.num_levels,
        level_spacing_bps=row.level_spacing_bps,
        check_staleness=row.check_staleness,
        staleness_threshold_ms=row.staleness_threshold_ms,
        quote_interval_ms=row.quote_interval_ms,
        price_threshold_bps=row.price_threshold_bps,
        created_at=row.created_at,
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )
