"""OrderExecution with a scripted venue: no order outlives a kill (ARCHITECTURE D22, D23, D31)."""

from __future__ import annotations

import itertools
from dataclasses import replace
from decimal import Decimal

from sqlalchemy.exc import OperationalError

from mmsvc.adapters.order_service.client import (
    OpenOrder,
    Outcome,
    PlaceRequest,
    PlaceResult,
    RequestFailure,
)
from mmsvc.domain import state as machine
from mmsvc.domain.engine import QuoteDecision
from mmsvc.domain.model import NewOrder, Order, OrderStatus, RiskTrigger, Side, SymbolState
from mmsvc.processes.worker.execution import POST_ONLY_WOULD_CROSS
from tests.unit.processes.worker.stubs import (
    SYMBOL,
    Clock,
    Store,
    Venue,
    book,
    buy,
    execution,
    inventory_long,
    trader,
)


def places(*orders: NewOrder) -> QuoteDecision:
    return QuoteDecision(None, (), (), tuple(orders))


def cancels(*orders: Order | None) -> QuoteDecision:
    known = tuple(o for o in orders if o is not None)
    assert len(known) == len(orders), "cancel of an order the trader does not hold"
    return QuoteDecision(None, (), known, ())


def listed(order_id: str, client_order_id: str) -> OpenOrder:
    return OpenOrder(order_id, client_order_id, SYMBOL, "BUY", Decimal(99), Decimal(1), "NEW")


def pause(t) -> None:  # type: ignore[no-untyped-def]
    t.enter(machine.pause(t.state))


# ------------------------------------------------ scenario 1: late accept after a flatten


def test_a_flatten_with_a_place_in_flight_is_not_complete() -> None:
    t, venue, store, clock = trader(), Venue(), Store(), Clock()
    ex = execution(t, venue, store, clock)
    venue.hold_places = True
    ex.submit(places(buy()))
    pause(t)
    ex.start_flatten()
    # The venue lists nothing (the order does not exist yet), but a place is in flight.
    assert ex.poll_flatten() is False
    assert not ex.flat_confirmed


def test_a_201_after_the_flatten_finds_its_order_and_cancels_it_by_id() -> None:
    t, venue, store, clock = trader(), Venue(), Store(), Clock()
    ex = execution(t, venue, store, clock)
    venue.hold_places = True
    ex.submit(places(buy()))
    (cid,) = t.orders
    pause(t)
    ex.start_flatten()
    ex.poll_flatten()
    assert cid in t.orders  # remembered until the venue says it is final
    venue.held[0].set_result(PlaceResult(Outcome.ACCEPTED, cid, 0.001, order_id="late-1"))
    ex.poll()
    ex.housekeep()
    assert venue.canceled == ["late-1"]


def test_an_accepted_order_of_a_paused_symbol_is_chased_even_without_a_requote() -> None:
    t, venue, store, clock = trader(SymbolState.PAUSED), Venue(), Store(), Clock()
    ex = execution(t, venue, store, clock)
    t.placed("c-1", buy())
    t.acknowledged("c-1", "o-accepted-late")  # an ACCEPTED event after the flatten
    ex.housekeep()
    assert venue.canceled == ["o-accepted-late"]


# --------------------------------------------------- scenario 2: cancels retried by id


def test_an_unanswered_cancel_is_retried_with_growing_backoff_until_the_venue_answers() -> None:
    t, venue, store, clock = trader(SymbolState.PAUSED), Venue(), Store(), Clock()
    ex = execution(t, venue, store, clock)
    t.placed("c-1", buy())
    t.cancel_sent("c-1")
    t.acknowledged("c-1", "o-1")
    venue.cancel_answers.extend([Outcome.TIMEOUT, Outcome.ERROR, Outcome.CANCELED])
    venue.open = [listed("o-1", "c-1")]  # it rests until the venue takes the cancel
    ex.chase("o-1", "c-1")
    attempts_at = []
    for _ in range(200):
        before = len(venue.canceled)
        ex.housekeep()
        if len(venue.canceled) > before:
            attempts_at.append(clock.now)
        clock.now += 5
        if not ex.chasing:
            break
    assert venue.canceled == ["o-1", "o-1", "o-1"]
    gaps = [b - a for a, b in itertools.pairwise(attempts_at)]
    assert gaps[1] > gaps[0]  # backoff grows
    assert t.orders["c-1"].status is OrderStatus.CANCELED
    assert [u.status for u in store.updates] == ["CANCELED"]


def test_a_chase_ends_when_the_orders_final_event_arrives() -> None:
    t, venue, store, clock = trader(SymbolState.PAUSED), Venue(), Store(), Clock()
    ex = execution(t, venue, store, clock)
    t.placed("c-1", buy())
    venue.cancel_answers.append(Outcome.TIMEOUT)
    ex.chase("o-1", "c-1")
    ex.housekeep()
    t.finished("c-1", OrderStatus.CANCELED)  # its CANCELED engine event
    clock.now += 1_000
    ex.housekeep()
    assert venue.canceled == ["o-1"]
    assert not ex.chasing


# ----------------------------------------- scenario 3: exposure kept until the final event


def test_a_delete_200_keeps_the_orders_exposure_until_its_final_event() -> None:
    t, venue, store, clock = trader(), Venue(), Store(), Clock()
    ex = execution(t, venue, store, clock)
    t.placed("c-1", buy("99.00", "1"))
    resting = t.acknowledged("c-1", "o-1")
    ex.submit(cancels(resting))
    ex.poll()
    order = t.orders["c-1"]
    assert order.status is OrderStatus.CANCELED
    assert order.is_open
    assert not order.is_resting  # and not canceled again


def test_a_fill_on_kafka_after_the_delete_answer_cannot_push_past_max_position() -> None:
    """Limit 150 USDT: a 1-lot bid at 99 rests; DELETE answers 200; its fill may still come."""
    t, venue, store, clock = trader(), Venue(), Store(), Clock()
    t.config = replace(t.config, max_position_usdt=Decimal("150"), order_size_usdt=Decimal("100"))
    t.inventory = inventory_long("0")
    book(t)
    ex = execution(t, venue, store, clock)
    t.placed("c-1", buy("99.00", "1"))
    resting = t.acknowledged("c-1", "o-1")
    ex.submit(cancels(resting))
    ex.poll()
    decision = t.decide(clock())
    assert decision is not None
    bids = [p for p in decision.place if p.side is Side.BUY]
    # Worst case: the canceled-but-unconfirmed 1 lot + a new ~1 lot bid > 150 USDT.
    assert bids == []


def test_a_404_is_never_final() -> None:
    t, venue, store, clock = trader(), Venue(), Store(), Clock()
    ex = execution(t, venue, store, clock)
    t.placed("c-1", buy())
    resting = t.acknowledged("c-1", "o-1")
    venue.cancel_answers.append(Outcome.NOT_FOUND)
    ex.submit(cancels(resting))
    ex.poll()
    assert t.orders["c-1"].is_open
    assert store.updates == []


# ----------------------------------------------- scenario 9: a post-only cross is no storm


def _cross(req: PlaceRequest) -> PlaceResult:
    return PlaceResult(Outcome.REJECTED, req.client_order_id, 0.001, code=POST_ONLY_WOULD_CROSS)


def test_post_only_crosses_hold_their_side_and_never_make_a_reject_storm() -> None:
    t, venue, store, clock = trader(reject_storm_count=5), Venue(), Store(), Clock()
    ex = execution(t, venue, store, clock)
    for _ in range(6):
        venue.place_answers.append(_cross)
        ex.submit(places(buy()))
        outcome = ex.poll()
        assert outcome is not None
        assert outcome.kill is None
        assert outcome.rejects == 0
        assert outcome.crossed == [Side.BUY]
    assert t.rejects.in_window(clock()) == 0


def test_a_cross_whose_rejected_event_arrived_before_its_422_is_no_storm_either() -> None:
    # The simulator, like a venue, publishes the REJECTED engine event before it answers
    # 422; the worker applies that event (trader.on_order_event: the order is finished,
    # main.py holds the side and counts nothing) and only then polls the HTTP answer.
    t, venue, store, clock = trader(reject_storm_count=1), Venue(), Store(), Clock()
    ex = execution(t, venue, store, clock)
    venue.hold_places = True
    ex.submit(places(buy()))
    (cid,) = t.orders
    t.on_order_event({"client_order_id": cid, "event_type": "REJECTED", "order_id": "o-1"})
    venue.held[0].set_result(PlaceResult(Outcome.REJECTED, cid, 0.001, code=POST_ONLY_WOULD_CROSS))
    outcome = ex.poll()
    assert outcome is not None
    assert outcome.rejects == 0
    assert outcome.kill is None


def test_other_rejects_still_make_a_storm() -> None:
    t, venue, store, clock = trader(reject_storm_count=2), Venue(), Store(), Clock()
    ex = execution(t, venue, store, clock)

    def reject(req: PlaceRequest) -> PlaceResult:
        return PlaceResult(Outcome.REJECTED, req.client_order_id, 0.001, code="MIN_NOTIONAL")

    kills = []
    for _ in range(2):
        venue.place_answers.append(reject)
        ex.submit(places(buy()))
        outcome = ex.poll()
        assert outcome is not None
        kills.append(outcome.kill)
    assert kills[-1] is not None
    assert kills[-1].trigger is RiskTrigger.REJECT_STORM


# ------------------------------------------------------ D22: continuous reconciliation


def test_reconciliation_cancels_an_open_order_of_ours_the_worker_does_not_know() -> None:
    t, venue, store, clock = trader(), Venue(), Store(), Clock()
    ex = execution(t, venue, store, clock)
    venue.open = [listed("o-leftover", "c-from-a-crash")]
    ex.housekeep()  # listing
    ex.housekeep()  # the chase it started
    assert venue.canceled == ["o-leftover"]


def test_reconciliation_learns_the_order_id_of_a_timed_out_place_and_cancels_it() -> None:
    t, venue, store, clock = trader(), Venue(), Store(), Clock()
    ex = execution(t, venue, store, clock)

    def timeout(req: PlaceRequest) -> PlaceResult:
        return PlaceResult(Outcome.TIMEOUT, req.client_order_id, 0.051)

    venue.place_answers.append(timeout)
    ex.submit(places(buy()))
    outcome = ex.poll()
    assert outcome is not None
    assert outcome.kill is not None
    (cid,) = t.orders
    assert t.orders[cid].status is OrderStatus.UNKNOWN
    t.enter(machine.kill(t.state, "RESPONSE_TIMEOUT"))
    venue.open = [listed("o-came-alive", cid)]
    ex.housekeep()
    ex.housekeep()
    assert venue.canceled == ["o-came-alive"]


def test_an_unknown_place_keeps_its_exposure_until_absent_for_venue_hold_max() -> None:
    t, venue, store, clock = trader(SymbolState.HALTED), Venue(), Store(), Clock()
    ex = execution(t, venue, store, clock, venue_hold_max_ms=5_000, reconcile_interval_ms=1_000)
    t.placed("c-1", buy())
    t.timed_out("c-1")
    ex.housekeep()
    clock.now += 4_000
    ex.housekeep()
    assert "c-1" in t.orders
    clock.now += 1_500
    ex.housekeep()
    assert "c-1" not in t.orders
    assert store.updates[-1].final_event


def test_an_answered_order_absent_from_the_listing_is_canceled_but_keeps_its_exposure() -> None:
    t, venue, store, clock = trader(), Venue(), Store(), Clock()
    ex = execution(t, venue, store, clock)
    t.placed("c-1", buy())
    t.acknowledged("c-1", "o-1")
    ex.housekeep()
    order = t.orders["c-1"]
    assert order.status is OrderStatus.CANCELED
    assert order.is_open
    assert store.updates[-1].status == "CANCELED"
    assert not store.updates[-1].final_event


def test_a_failed_listing_is_retried_soon_and_a_timeout_reconciles_at_once() -> None:
    t, venue, store, clock = trader(), Venue(), Store(), Clock()
    ex = execution(t, venue, store, clock, reconcile_interval_ms=5_000)
    venue.open = RequestFailure(Outcome.TIMEOUT, 1.0, "slow")
    ex.housekeep()
    clock.now += 100
    ex.housekeep()
    assert venue.listings == 1
    venue.open = []
    clock.now += 200
    ex.housekeep()
    assert venue.listings == 2  # retried within a fraction of a second
    clock.now += 1_000
    ex.housekeep()
    assert venue.listings == 2  # then on its interval
    ex.reconcile_now()
    ex.housekeep()
    assert venue.listings == 3


def test_a_kill_is_flat_only_once_a_listing_shows_none_of_ours() -> None:
    t, venue, store, clock = trader(SymbolState.HALTED), Venue(), Store(), Clock()
    ex = execution(t, venue, store, clock)
    venue.open = [listed("o-1", "c-x")]
    ex.housekeep()
    assert not ex.flat_confirmed
    venue.open = []
    ex.reconcile_now()
    ex.housekeep()
    ex.housekeep()
    assert ex.flat_confirmed


# --------------------------------------------------------- D25: dependencies in doubt


def test_a_failed_listing_pulls_the_quotes() -> None:
    t, venue, store, clock = trader(), Venue(), Store(), Clock()
    ex = execution(t, venue, store, clock)
    venue.open = RequestFailure(Outcome.ERROR, 0.001, "HTTP 503")
    venue.flat = False  # the Order Service does not answer the cancel-all either
    ex.housekeep()
    assert ex.flattening  # cancel until flat, retried until it answers (D25)


def test_answers_met_by_a_postgres_outage_are_kept_and_written_first_once_it_answers() -> None:
    t, venue, store, clock = trader(), Venue(), Store(), Clock()
    downs: list[BaseException] = []
    ex = execution(t, venue, store, clock, on_database_down=downs.append)
    ex.submit(places(buy()))
    (cid,) = t.orders

    def refused() -> None:
        raise OperationalError("UPDATE", {}, Exception("connection refused"))

    store.before_write = refused
    outcome = ex.poll()  # the batch's outcome still acts now
    assert outcome is not None
    assert t.orders[cid].order_id is not None
    assert len(downs) == 1
    assert store.updates == []
    store.before_write = lambda: None
    ex.flush_unwritten()
    assert [(u.client_order_id, u.status) for u in store.updates] == [(cid, "NEW")]
    ex.flush_unwritten()  # written once
    assert len(store.updates) == 1
