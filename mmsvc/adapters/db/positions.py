"""Positions and P&L per symbol; the fills in mm_fills are the source they are rebuilt from."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from mmsvc.adapters.db.models import MMPosition
from mmsvc.adapters.db.records import PositionRecord


class PositionRepository:
    """Reads and writes mm_positions inside the caller's transaction; never commits."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def get(self, symbol: str) -> PositionRecord | None:
        """The stored position of `symbol`, or None when it never traded."""
        statement = (
            select(MMPosition)
            .where(MMPosition.symbol == symbol)
            .execution_options(populate_existing=True)
        )
        row = self._session.scalars(statement).one_or_none()
        return None if row is None else _record(row)

    def list(self) -> list[PositionRecord]:
        """Every stored position, by symbol."""
        statement = (
            select(MMPosition).order_by(MMPosition.symbol).execution_options(populate_existing=True)
        )
        return [_record(row) for row in self._session.scalars(statement)]

    def upsert(self, position: PositionRecord) -> PositionRecord:
        """Write the position whole (insert or replace) and return the stored row."""
        values = {
            "quantity": position.quantity,
            "avg_entry_price": position.avg_entry_price,
            "realized_pnl": position.realized_pnl,
            "fees_paid": position.fees_paid,
        }
        statement = (
            insert(MMPosition)
            .values(symbol=position.symbol, **values)
            .on_conflict_do_update(
                index_elements=[MMPosition.symbol], set_={**values, "updated_at": func.now()}
            )
            .returning(MMPosition)
            .execution_options(populate_existing=True)
        )
        return _record(self._session.scalars(statement).one())


def _record(row: MMPosition) -> PositionRecord:
    return PositionRecord(
        symbol=row.symbol,
        quantity=row.quantity,
        avg_entry_price=row.avg_entry_price,
        realized_pnl=row.realized_pnl,
        fees_paid=row.fees_paid,
        updated_at=row.updated_at,
    )
