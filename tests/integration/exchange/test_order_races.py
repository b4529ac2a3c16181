"""The race knobs of the simulator (faults.py), each provoked and observed from outside (D21, D22).

A place held before the order exists, an answer that trails the order, engine
events that trail the answers, and both together: what the service's kill,
pause and reconciliation must survive (issue 12).
"""

from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest
import requests

from mmsvc.adapters.kafka import topics
from mmsvc.devstack.exchange.venue import now_ms
from tests.fixtures.exchange import Exchange
from tests.fixtures.kafka import TopicReader
from tests.fixtures.waiting import wait_for
from tests.integration.exchange.conftest import below_touch, order_body

pytestmark = pytest.mark.integration

ENGINE = topics.ENGINE_EVENTS
HOLD_MS = 800  # long enough that the checks made during the hold finish inside it on a busy box
DELAY_MS = 600
DRAINED = {"held_places": 0, "delayed_events": 0}


def listed(sim: Exchange, session: requests.Session, account: str) -> list[dict[str, Any]]:
    response = session.get(
        f"{sim.order_service_url}/v1/orders", params={"account_id": account}, timeout=5
    )
    response.raise_for_status()
    return list(response.json()["orders"])


def cancel_all(sim: Exchange, session: requests.Session, account: str) -> int:
    response = session.post(
        f"{sim.order_service_url}/v1/orders/cancel-all", json={"account_id": account}, timeout=5
    )
    response.raise_for_status()
    return int(response.json()["canceled"])


def caught_up(reader: TopicReader, account: str) -> None:
    """Read the engine topic up to a marker order's ACCEPTED, so later absences mean something."""
    reader.read_until(lambda: reader.of(ENGINE, account_id=account), timeout=20)


def test_held_place_times_out_is_invisible_to_cancel_all_and_listing_then_comes_alive(
    sim, session, account, reader_factory
):
    reader = reader_factory([ENGINE], ["BTCUSDT"])
    body = order_body(account, price=below_touch(sim, "BTCUSDT", 200))
    sim.set_faults(place_hold_ms=HOLD_MS)
    sent_ms = now_ms()
    with pytest.raises(requests.Timeout):
        requests.post(f"{sim.order_service_url}/v1/orders", json=body, timeout=0.05)
    canceled = cancel_all(sim, session, account)
    during_hold = listed(sim, session, account)
    admin_listing = sim.admin("GET", f"/v1/orders?account_id={account}").json()["orders"]
    checked_ms = now_ms()

    reader.read_until(lambda: reader.of(ENGINE, account_id=account), timeout=20)
    (accepted,) = reader.of(ENGINE, account_id=account)
    assert accepted["event_type"] == "ACCEPTED"
    assert accepted["ts_ms"] >= sent_ms + HOLD_MS - 5  # it came alive after the hold
    # An order of events, not a time: the checks ran before the order existed.
    assert checked_ms <= accepted["ts_ms"], "the checks ran after the hold: the box was too busy"
    assert canceled == 0
    assert during_hold == []
    assert admin_listing == []
    (alive,) = wait_for(lambda: listed(sim, session, account), 10, "the held order to exist")
    assert (alive["client_order_id"], alive["status"]) == (body["client_order_id"], "NEW")
    assert accepted["order_id"] == alive["order_id"]
    assert cancel_all(sim, session, account) == 1  # it rests until canceled


def test_a_patient_client_gets_the_held_order_answered_after_the_hold(sim, session, account):
    body = order_body(account, price=below_touch(sim, "BTCUSDT", 200))
    sim.set_faults(place_hold_ms=300)
    started = time.monotonic()
    answer = session.post(f"{sim.order_service_url}/v1/orders", json=body, timeout=5)
    waited = time.monotonic() - started

    assert answer.status_code == 201
    assert waited >= 0.3
    assert [o["order_id"] for o in listed(sim, session, account)] == [answer.json()["order_id"]]
    cancel_all(sim, session, account)


def test_retries_of_a_held_client_order_id_create_one_order(sim, session, account, reader_factory):
    reader = reader_factory([ENGINE], ["BTCUSDT"])
    body = order_body(account, price=below_touch(sim, "BTCUSDT", 200))
    sim.set_faults(place_hold_ms=HOLD_MS)
    with pytest.raises(requests.Timeout):
        requests.post(f"{sim.order_service_url}/v1/orders", json=body, timeout=0.05)
    answers: list[requests.Response] = []

    def retry() -> None:
        answers.append(requests.post(f"{sim.order_service_url}/v1/orders", json=body, timeout=5))

    retries = [threading.Thread(target=retry) for _ in range(2)]
    for thread in retries:
        thread.start()
    assert listed(sim, session, account) == []  # still held while the retries wait
    for thread in retries:
        thread.join(10)

    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json() == answers[1].json()
    orders = listed(sim, session, account)
    assert [o["order_id"] for o in orders] == [answers[0].json()["order_id"]]
    marker = str(uuid.uuid4())  # an order placed after, so reading up to its ACCEPTED is enough
    sim.clear_faults()
    session.post(
        f"{sim.order_service_url}/v1/orders",
        json=order_body(marker, price=below_touch(sim, "BTCUSDT", 200)),
        timeout=5,
    ).raise_for_status()
    caught_up(reader, marker)
    assert [e["event_type"] for e in reader.of(ENGINE, account_id=account)] == ["ACCEPTED"]
    cancel_all(sim, session, account)
    cancel_all(sim, session, marker)


def test_a_late_answer_comes_after_the_order_exists_and_is_accepted(
    sim, session, account, reader_factory
):
    reader = reader_factory([ENGINE], ["BTCUSDT"])
    body = order_body(account, price=below_touch(sim, "BTCUSDT", 200))
    sim.set_faults(place_answer_delay_ms=HOLD_MS)
    with pytest.raises(requests.Timeout):
        requests.post(f"{sim.order_service_url}/v1/orders", json=body, timeout=0.1)
    exists = listed(sim, session, account)  # asked before the answer would have come
    reader.read_until(lambda: reader.of(ENGINE, account_id=account), timeout=20)

    assert [o["client_order_id"] for o in exists] == [body["client_order_id"]]
    assert [e["event_type"] for e in reader.of(ENGINE, account_id=account)] == ["ACCEPTED"]
    assert cancel_all(sim, session, account) == 1


def test_delayed_events_trail_the_delete_answer_and_keep_their_order(
    sim, session, account, reader_factory
):
    reader = reader_factory([ENGINE], ["BTCUSDT"])
    sim.set_faults(engine_event_delay_ms=DELAY_MS, delay_symbols=["BTCUSDT"])
    placed = session.post(
        f"{sim.order_service_url}/v1/orders",
        json=order_body(account, price=below_touch(sim, "BTCUSDT", 200)),
        timeout=5,
    )
    assert placed.status_code == 201
    caught_up(reader, account)  # the ACCEPTED: the reader now keeps up with the topic
    order_id = placed.json()["order_id"]
    deleted = session.delete(f"{sim.order_service_url}/v1/orders/{order_id}", timeout=5)
    answered_ms = now_ms()
    reader.read_for(0.3)
    before = [e["event_type"] for e in reader.of(ENGINE, account_id=account)]
    reader.read_until(lambda: len(reader.of(ENGINE, account_id=account)) == 2, timeout=20)

    assert deleted.status_code == 200
    assert before == ["ACCEPTED"]  # no CANCELED yet 300 ms after the 200
    accepted, canceled = reader.seen_on(ENGINE, account_id=account)
    assert (accepted.record["event_type"], canceled.record["event_type"]) == (
        "ACCEPTED",
        "CANCELED",
    )
    assert canceled.published_ms >= answered_ms + DELAY_MS - 150
    assert canceled.published_ms - canceled.record["ts_ms"] >= DELAY_MS - 5


def test_a_fill_event_arrives_after_the_answer_of_a_delete_sent_after_the_fill(
    sim, session, account, reader_factory
):
    reader = reader_factory([ENGINE], ["BTCUSDT"])
    sim.set_faults(engine_event_delay_ms=DELAY_MS)
    price = below_touch(sim, "BTCUSDT", 1)
    placed = session.post(
        f"{sim.order_service_url}/v1/orders",
        json=order_body(account, price=price, quantity="0.5000"),  # fills only in part
        timeout=5,
    )
    assert placed.status_code == 201
    order_id = placed.json()["order_id"]

    def filled_in_part() -> bool:
        # Move down until the order fills: a random-walk jump between the place and
        # the move could otherwise leave it above the market (polled, never assumed).
        sim.admin("POST", "/v1/markets/BTCUSDT/move", {"bps": -5}).raise_for_status()
        listed = sim.admin("GET", f"/v1/orders?account_id={account}").json()["orders"]
        return any(o["order_id"] == order_id and Decimal(o["filled_quantity"]) > 0 for o in listed)

    wait_for(filled_in_part, 20, "a partial fill of the order", poll_s=0.2)
    deleted = session.delete(f"{sim.order_service_url}/v1/orders/{order_id}", timeout=5)
    answered_ms = now_ms()
    reader.read_until(
        lambda: reader.of(ENGINE, account_id=account, event_type="CANCELED"), timeout=20
    )

    assert deleted.status_code == 200
    events = reader.seen_on(ENGINE, account_id=account)
    kinds = [e.record["event_type"] for e in events]
    assert kinds[0] == "ACCEPTED"
    assert kinds[-1] == "CANCELED"
    fills = [e for e in events if e.record["event_type"] == "FILL"]
    assert fills
    assert kinds == ["ACCEPTED", *["FILL"] * len(fills), "CANCELED"]
    assert all(f.record["ts_ms"] <= answered_ms for f in fills)  # filled before the DELETE
    assert all(f.published_ms > answered_ms for f in fills)  # published after its 200
    published = [e.published_ms for e in events]
    assert published == sorted(published)


def test_held_place_and_delayed_events_together(sim, session, account, reader_factory):
    reader = reader_factory([ENGINE], ["BTCUSDT"])
    body = order_body(account, price=below_touch(sim, "BTCUSDT", 200))
    sim.set_faults(place_hold_ms=HOLD_MS, engine_event_delay_ms=DELAY_MS)
    sent_ms = now_ms()
    with pytest.raises(requests.Timeout):
        requests.post(f"{sim.order_service_url}/v1/orders", json=body, timeout=0.05)
    assert listed(sim, session, account) == []
    assert cancel_all(sim, session, account) == 0
    assert sim.admin("GET", "/v1/pending").json()["held_places"] == 1
    wait_for(lambda: listed(sim, session, account), 10, "the held order to exist", poll_s=0.02)
    listed_ms = now_ms()
    reader.read_until(lambda: reader.of(ENGINE, account_id=account), timeout=20)

    (accepted,) = reader.seen_on(ENGINE, account_id=account)
    assert accepted.record["event_type"] == "ACCEPTED"
    assert accepted.record["ts_ms"] >= sent_ms + HOLD_MS - 5  # created after the hold
    assert accepted.published_ms >= listed_ms  # and announced after it was listed
    assert accepted.published_ms - accepted.record["ts_ms"] >= DELAY_MS - 5
    assert cancel_all(sim, session, account) == 1
    sim.clear_faults()  # the CANCELED and other accounts' events still in the line go out
    wait_for(lambda: sim.admin("GET", "/v1/pending").json() == DRAINED, 10, "a drained venue")


def test_race_knobs_read_back_and_bad_values_are_400(sim):
    knobs = sim.set_faults(place_hold_ms=300, engine_event_delay_ms=100, delay_symbols=["ETHUSDT"])
    assert (knobs["place_hold_ms"], knobs["engine_event_delay_ms"]) == (300.0, 100.0)
    assert knobs["delay_symbols"] == ["ETHUSDT"]
    assert sim.admin("POST", "/v1/faults", {"place_hold_ms": -1}).status_code == 400
    assert sim.admin("POST", "/v1/faults", {"delay_symbols": "ETHUSDT"}).status_code == 400
