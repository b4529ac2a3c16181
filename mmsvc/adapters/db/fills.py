"""Fill history: each engine event recorded at most once (ARCHITECTURE D1: replays, never loses)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from mmsvc.adapters.db.models import MMFill
from mmsvc.adapters.db.records import Fill, Liquidity, Side


class FillRepository:
    """Appends to and reads mm_fills inside the caller's transaction; never commits."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def insert_if_new(self, fill: Fill) -> bool:
        """Record the fill; False when its event_id was already recorded (a replay)."""
        statement = (
            insert(MMFill)
            .values(
                event_id=fill.event_id,
                symbol=fill.symbol,
                order_id=fill.order_id,
                client_order_id=fill.client_order_id,
                side=fill.side.value,
                price=fill.price,
                quantity=fill.quantity,
                fee=fill.fee,
                fee_asset=fill.fee_asset,
                liquidity=None if fill.liquidity is None else fill.liquidity.value,
                ts_ms=fill.ts_ms,
            )
            .on_conflict_do_nothing(index_elements=[MMFill.event_id])
            .returning(MMFill.id)
        )
        return self._session.execute(statement).scalar_one_or_none() is not None

    def list_for_symbol(self, symbol: str) -> list[Fill]:
        """The symbol's fills in the order they happened (ts_ms, then arrival), to rebuild from."""
        statement = select(MMFill).where(MMFill.symbol == symbol).order_by(MMFill.ts_ms, MMFill.id)
        return [_fill(row) for row in self._session.scalars(statement)]


def _fill(row: MMFill) -> Fill:
    return Fill(
        event_id=row.event_id,
        symbol=row.symbol,
        order_id=row.order_id,
        client_order_id=row.client_order_id,
        side=Side(row.side),
        price=row.price,
        quantity=row.quantity,
        fee=row.fee,
        fee_asset=row.fee_asset,
        liquidity=None if row.liquidity is None else Liquidity(row.liquidity),
        ts_ms=row.ts_ms,
    )
