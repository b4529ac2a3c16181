"""Orders mmsvc sent: PENDING before the request, then moved by the 201 and by engine events.

engine.event.v1 is authoritative and may arrive before the 201 (ARCHITECTURE
D10), so no write here ever moves an order backwards: the 201 only promotes a
PENDING (or UNKNOWN) order, a final status is never left, and the filled
quantity only grows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from decimal import Decimal
from uuid import UUID

from sqlalchemy import Select, func, insert, select, update
from sqlalchemy.orm import Session

from mmsvc.adapters.db.models import MMOrder
from mmsvc.adapters.db.records import (
    FINAL_STATUSES,
    OPEN_STATUSES,
    NewOrder,
    OrderRecord,
    OrderStatus,
    OrderUpdate,
    Side,
)

# How far an order has come; no write moves it to a lower rank.
_RANK = {
    OrderStatus.PENDING: 0,
    OrderStatus.UNKNOWN: 1,
    OrderStatus.NEW: 2,
    OrderStatus.PARTIALLY_FILLED: 3,
    **dict.fromkeys(FINAL_STATUSES, 4),
}


class OrderRepository:
    """Reads and writes mm_orders inside the caller's transaction; never commits."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def insert_pending(self, order: NewOrder) -> OrderRecord:
        """Write the order PENDING; commit it before sending the request (D10)."""
        statement = (
            insert(MMOrder)
            .values(
                client_order_id=order.client_order_id,
                symbol=order.symbol,
                side=order.side.value,
                price=order.price,
                quantity=order.quantity,
                level=order.level,
                status=OrderStatus.PENDING.value,
                epoch=order.epoch,
            )
            .returning(MMOrder)
        )
        return _record(self._session.scalars(statement).one())

    def insert_pending_many(self, orders: Sequence[NewOrder]) -> None:
        """Write a requote's orders PENDING in one statement (the hot path of D10)."""
        if not orders:
            return
        rows = [
            {
                "client_order_id": order.client_order_id,
                "symbol": order.symbol,
                "side": order.side.value,
                "price": order.price,
                "quantity": order.quantity,
                "level": order.level,
                "status": OrderStatus.PENDING.value,
                "epoch": order.epoch,
            }
            for order in orders
        ]
        self._session.execute(insert(MMOrder).values(rows))

    def get(self, client_order_id: UUID) -> OrderRecord | None:
        """The order with this client_order_id, or None."""
        row = self._session.scalars(_by_client_id(client_order_id)).one_or_none()
        return None if row is None else _record(row)

    def get_by_order_id(self, order_id: str) -> OrderRecord | None:
        """The order the Order Service knows as `order_id`, or None."""
        statement = (
            select(MMOrder)
            .where(MMOrder.order_id == order_id)
            .execution_options(populate_existing=True)
        )
        row = self._session.scalars(statement).one_or_none()
        return None if row is None else _record(row)

    def list_open(self, symbol: str) -> list[OrderRecord]:
        """The symbol's orders that may still rest on the book (UNKNOWN included), oldest first."""
        statement = (
            select(MMOrder)
            .where(MMOrder.symbol == symbol, MMOrder.status.in_([s.value for s in OPEN_STATUSES]))
            .order_by(MMOrder.created_at, MMOrder.client_order_id)
            .execution_options(populate_existing=True)
        )
        return [_record(row) for row in self._session.scalars(statement)]

    def unsettled(self, symbol: str) -> list[OrderRecord]:
        """Open rows and rows still awaiting their final engine event (D31: config DELETE)."""
        statement = (
            select(MMOrder)
            .where(
                MMOrder.symbol == symbol,
                MMOrder.status.in_([s.value for s in OPEN_STATUSES])
                | MMOrder.awaiting_final_event.is_(True),
            )
            .order_by(MMOrder.created_at, MMOrder.client_order_id)
            .execution_options(populate_existing=True)
        )
        return [_record(row) for row in self._session.scalars(statement)]

    def mark_new(self, client_order_id: UUID, order_id: str) -> OrderUpdate | None:
        """Record the 201: the order_id, and NEW unless an engine event already moved it on."""
        return self.apply_event(client_order_id, OrderStatus.NEW, order_id=order_id)

    def mark_unknown(self, client_order_id: UUID) -> OrderUpdate | None:
        """A request that timed out: a still PENDING order becomes UNKNOWN (D10)."""
        current = self._lock(client_order_id)
        if current is None:
            return None
        if current.status is not OrderStatus.PENDING:
            return OrderUpdate(current.status, current)
        return OrderUpdate(
            current.status, self._write(replace(current, status=OrderStatus.UNKNOWN))
        )

    def apply_event(
        self,
        client_order_id: UUID,
        status: OrderStatus,
        *,
        filled_quantity: Decimal | None = None,
        order_id: str | None = None,
        reject_reason: str | None = None,
        final_event: bool = False,
    ) -> OrderUpdate | None:
        """Move the order forward; None for an order that is not ours.

        ``final_event`` says the status comes from the order's final engine event
        (or an answer that it never existed): only that settles the row (D31). A
        final status from a DELETE answer or the venue's listing leaves the row
        awaiting its event, so its exposure and the config DELETE guard hold.
        """
        current = self._lock(client_order_id)
        if current is None:
            return None
        settles = final_event and status in FINAL_STATUSES
        target = current.status if _RANK[status] < _RANK[current.status] else status
        # A final status is never left, except that the final engine event is the
        # authority over one a DELETE answer or a listing gave (a FILL after it: D31).
        if current.status in FINAL_STATUSES and not (settles and current.awaiting_final_event):
            target = current.status
        filled = max(current.filled_quantity, filled_quantity or Decimal(0))
        if target is OrderStatus.FILLED:
            filled = current.quantity
        new = replace(
            current,
            status=target,
            filled_quantity=filled,
            order_id=current.order_id or order_id,
            reject_reason=reject_reason or current.reject_reason,
            awaiting_final_event=current.awaiting_final_event and not settles,
        )
        if new == current:
            return OrderUpdate(current.status, current)
        return OrderUpdate(current.status, self._write(new))

    def _lock(self, client_order_id: UUID) -> OrderRecord | None:
        statement = _by_client_id(client_order_id).with_for_update()
        row = self._session.scalars(statement).one_or_none()
        return None if row is None else _record(row)

    def _write(self, order: OrderRecord) -> OrderRecord:
        statement = (
            update(MMOrder)
            .where(MMOrder.client_order_id == order.client_order_id)
            .values(
                status=order.status.value,
                filled_quantity=order.filled_quantity,
                order_id=order.order_id,
                reject_reason=order.reject_reason,
                awaiting_final_event=order.awaiting_final_event,
                updated_at=func.now(),
            )
            .returning(MMOrder)
            .execution_options(populate_existing=True)
        )
        return _record(self._session.scalars(statement).one())


def _by_client_id(client_order_id: UUID) -> Select[MMOrder]:
    return (
        select(MMOrder)
        .where(MMOrder.client_order_id == client_order_id)
        .execution_options(populate_existing=True)
    )


def _record(row: MMOrder) -> OrderRecord:
    return OrderRecord(
        client_order_id=row.client_order_id,
        order_id=row.order_id,
        symbol=row.symbol,
        side=Side(row.side),
        price=row.price,
        quantity=row.quantity,
        filled_quantity=row.filled_quantity,
        status=OrderStatus(row.status),
        level=row.level,
        reject_reason=row.reject_reason,
        created_at=row.created_at,
        updated_at=row.updated_at,
        awaiting_final_event=row.awaiting_final_event,
        epoch=row.epoch,
    )
