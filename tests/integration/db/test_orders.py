"""OrderRepository: PENDING first, never moved backwards by a late 201 or event (D10)."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mmsvc.adapters.db.orders import OrderRepository
from mmsvc.adapters.db.records import NewOrder, OrderStatus, OrderUpdate, Side
from tests.integration.db.conftest import new_order

pytestmark = pytest.mark.integration


def known(update: OrderUpdate | None) -> OrderUpdate:
    """The update of an order the repository holds (None would mean an unknown order)."""
    assert update is not None
    return update


def test_insert_pending_writes_the_order_pending_with_nothing_filled(db_session):
    order = new_order(side=Side.SELL, level=2)
    stored = OrderRepository(db_session).insert_pending(order)
    assert stored.status is OrderStatus.PENDING
    assert stored.order_id is None
    assert stored.filled_quantity == Decimal(0)
    assert (stored.side, stored.price, stored.quantity, stored.level) == (
        Side.SELL,
        Decimal("65000.10"),
        Decimal("0.0015"),
        2,
    )
    assert OrderRepository(db_session).get(order.client_order_id) == stored


def test_a_retry_with_the_same_client_order_id_cannot_write_a_second_row(db_session):
    orders = OrderRepository(db_session)
    order = new_order()
    orders.insert_pending(order)
    with pytest.raises(IntegrityError), db_session.begin_nested():
        orders.insert_pending(order)


def test_the_201_makes_a_pending_order_new_with_its_order_id(db_session):
    orders = OrderRepository(db_session)
    order = new_order()
    orders.insert_pending(order)
    update = known(orders.mark_new(order.client_order_id, "o-42"))
    assert update.previous is OrderStatus.PENDING
    assert update.changed
    assert (update.order.status, update.order.order_id) == (OrderStatus.NEW, "o-42")
    assert orders.get_by_order_id("o-42") == update.order


def test_a_201_after_the_fill_event_does_not_move_the_order_back(db_session):
    orders = OrderRepository(db_session)
    order = new_order()
    orders.insert_pending(order)
    orders.apply_event(
        order.client_order_id,
        OrderStatus.PARTIALLY_FILLED,
        filled_quantity=Decimal("0.0005"),
        order_id="o-42",
    )
    late = known(orders.mark_new(order.client_order_id, "o-42"))
    assert not late.changed
    assert late.order.status is OrderStatus.PARTIALLY_FILLED
    assert late.order.filled_quantity == Decimal("0.0005")


def test_events_fill_the_order_step_by_step(db_session):
    orders = OrderRepository(db_session)
    order = new_order()
    orders.insert_pending(order)
    orders.mark_new(order.client_order_id, "o-1")
    partial = known(
        orders.apply_event(
            order.client_order_id, OrderStatus.PARTIALLY_FILLED, filled_quantity=Decimal("0.001")
        )
    )
    assert partial.order.filled_quantity == Decimal("0.001")
    done = known(
        orders.apply_event(
            order.client_order_id, OrderStatus.FILLED, filled_quantity=Decimal("0.0015")
        )
    )
    assert done.previous is OrderStatus.PARTIALLY_FILLED
    assert (done.order.status, done.order.filled_quantity) == (
        OrderStatus.FILLED,
        Decimal("0.0015"),
    )
    assert not done.order.is_open


def test_a_final_status_is_never_left(db_session):
    orders = OrderRepository(db_session)
    order = new_order()
    orders.insert_pending(order)
    orders.apply_event(order.client_order_id, OrderStatus.CANCELED, order_id="o-1")
    late = known(orders.apply_event(order.client_order_id, OrderStatus.NEW))
    assert late.order.status is OrderStatus.CANCELED
    assert not late.changed


def test_a_reject_counts_once_whether_it_came_as_a_4xx_or_an_event(db_session):
    orders = OrderRepository(db_session)
    order = new_order()
    orders.insert_pending(order)
    first = known(
        orders.apply_event(
            order.client_order_id, OrderStatus.REJECTED, reject_reason="POST_ONLY would cross"
        )
    )
    second = known(orders.apply_event(order.client_order_id, OrderStatus.REJECTED, order_id="o-9"))
    assert first.changed
    assert not second.changed
    assert second.order.reject_reason == "POST_ONLY would cross"


def test_the_filled_quantity_never_shrinks(db_session):
    orders = OrderRepository(db_session)
    order = new_order()
    orders.insert_pending(order)
    orders.apply_event(
        order.client_order_id, OrderStatus.PARTIALLY_FILLED, filled_quantity=Decimal("0.001")
    )
    stale = known(
        orders.apply_event(
            order.client_order_id, OrderStatus.PARTIALLY_FILLED, filled_quantity=Decimal("0.0005")
        )
    )
    assert stale.order.filled_quantity == Decimal("0.001")


def test_filling_more_than_the_order_is_refused(db_session):
    orders = OrderRepository(db_session)
    order = new_order()
    orders.insert_pending(order)
    with pytest.raises(IntegrityError), db_session.begin_nested():
        orders.apply_event(
            order.client_order_id, OrderStatus.PARTIALLY_FILLED, filled_quantity=Decimal("1")
        )


def test_a_timed_out_request_leaves_a_pending_order_unknown_and_still_open(db_session):
    orders = OrderRepository(db_session)
    order = new_order()
    orders.insert_pending(order)
    update = known(orders.mark_unknown(order.client_order_id))
    assert (update.previous, update.order.status) == (OrderStatus.PENDING, OrderStatus.UNKNOWN)
    assert [o.client_order_id for o in orders.list_open("BTCUSDT")] == [order.client_order_id]
    resolved = known(
        orders.apply_event(order.client_order_id, OrderStatus.CANCELED, order_id="o-1")
    )
    assert resolved.order.status is OrderStatus.CANCELED


def test_mark_unknown_leaves_an_order_the_engine_already_reported(db_session):
    orders = OrderRepository(db_session)
    order = new_order()
    orders.insert_pending(order)
    orders.mark_new(order.client_order_id, "o-1")
    update = known(orders.mark_unknown(order.client_order_id))
    assert not update.changed
    assert update.order.status is OrderStatus.NEW


def test_list_open_returns_the_symbols_live_orders_oldest_first(db_session):
    orders = OrderRepository(db_session)
    kept = [new_order() for _ in range(3)]
    for order in kept:
        orders.insert_pending(order)
    other_symbol = new_order(symbol="ETHUSDT")
    orders.insert_pending(other_symbol)
    orders.mark_new(kept[1].client_order_id, "o-2")
    canceled = new_order()
    orders.insert_pending(canceled)
    orders.apply_event(canceled.client_order_id, OrderStatus.CANCELED)
    open_ids = {order.client_order_id for order in orders.list_open("BTCUSDT")}
    assert open_ids == {order.client_order_id for order in kept}


def test_events_for_an_order_that_is_not_ours_return_none(db_session):
    orders = OrderRepository(db_session)
    assert orders.apply_event(uuid4(), OrderStatus.NEW) is None
    assert orders.mark_new(uuid4(), "o-1") is None
    assert orders.mark_unknown(uuid4()) is None
    assert orders.get(uuid4()) is None


def test_a_requotes_orders_are_written_pending_in_one_statement(db_session: Session) -> None:
    repo = OrderRepository(db_session)
    orders = [
        NewOrder(uuid4(), "BTCUSDT", Side.BUY, Decimal("64990.0"), Decimal("0.0015"), 0),
        NewOrder(uuid4(), "BTCUSDT", Side.SELL, Decimal("65010.0"), Decimal("0.0015"), 0),
    ]
    repo.insert_pending_many(orders)
    stored = {o.client_order_id: o for o in repo.list_open("BTCUSDT")}
    assert set(stored) == {o.client_order_id for o in orders}
    assert all(o.status is OrderStatus.PENDING for o in stored.values())


def test_a_delete_answer_makes_a_row_canceled_but_it_awaits_its_final_event(db_session):
    """D31: a DELETE 200 is CANCELED, not settled; the engine event settles it (scenario 1/3)."""
    orders = OrderRepository(db_session)
    order = new_order()
    orders.insert_pending(order)
    orders.apply_event(order.client_order_id, OrderStatus.NEW, order_id="o-77")
    answered = orders.apply_event(order.client_order_id, OrderStatus.CANCELED)
    assert answered is not None
    assert answered.order.status is OrderStatus.CANCELED
    assert answered.order.awaiting_final_event
    assert not answered.order.is_settled
    assert [o.client_order_id for o in orders.unsettled("BTCUSDT")] == [order.client_order_id]
    settled = orders.apply_event(order.client_order_id, OrderStatus.CANCELED, final_event=True)
    assert settled is not None
    assert settled.order.is_settled
    assert orders.unsettled("BTCUSDT") == []


def test_a_fill_event_after_a_delete_answer_is_the_authority(db_session):
    orders = OrderRepository(db_session)
    order = new_order()
    orders.insert_pending(order)
    orders.apply_event(order.client_order_id, OrderStatus.CANCELED)  # listing or DELETE 200
    filled = orders.apply_event(
        order.client_order_id, OrderStatus.FILLED, filled_quantity=order.quantity, final_event=True
    )
    assert filled is not None
    assert filled.order.status is OrderStatus.FILLED
    assert filled.order.is_settled


def test_a_settled_row_never_moves_again(db_session):
    orders = OrderRepository(db_session)
    order = new_order()
    orders.insert_pending(order)
    orders.apply_event(order.client_order_id, OrderStatus.CANCELED, final_event=True)
    late = orders.apply_event(order.client_order_id, OrderStatus.FILLED, final_event=True)
    assert late is not None
    assert late.order.status is OrderStatus.CANCELED
    assert not late.changed
