"""The simulator stamps when each order reached it, for the tick-to-order benchmark."""

from __future__ import annotations

import time

import pytest

from tests.integration.exchange.conftest import below_touch, order_body

pytestmark = pytest.mark.integration


def test_admin_listing_shows_when_the_order_service_received_each_order(sim, session, account):
    body = order_body(account, price=below_touch(sim, "BTCUSDT", 50))
    before = time.time_ns()
    placed = session.post(f"{sim.order_service_url}/v1/orders", json=body, timeout=5)
    after = time.time_ns()
    assert placed.status_code == 201

    listed = sim.admin("GET", f"/v1/orders?account_id={account}").json()["orders"]

    assert [o["client_order_id"] for o in listed] == [body["client_order_id"]]
    assert before <= listed[0]["received_ns"] <= after


def test_order_service_contract_responses_carry_no_received_ns(sim, session, account):
    url = f"{sim.order_service_url}/v1/orders"
    body = order_body(account, price=below_touch(sim, "BTCUSDT", 50))
    placed = session.post(url, json=body, timeout=5)

    listed = session.get(url, params={"account_id": account}, timeout=5).json()["orders"]

    assert set(placed.json()) == {"order_id", "client_order_id", "status"}
    assert len(listed) == 1
    assert "received_ns" not in listed[0]
