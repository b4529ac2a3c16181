"""The simulator's read-only log: when each order rested, and every fill it made (chaos checker)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.integration.exchange.conftest import below_touch, order_body

pytestmark = pytest.mark.integration


def test_the_log_shows_when_an_order_rested_and_the_fills_of_the_account(sim, session, account):
    url = f"{sim.order_service_url}/v1/orders"
    resting = order_body(account, price=below_touch(sim, "BTCUSDT", 50))
    placed = session.post(url, json=resting, timeout=5).json()
    # Far through the touch: the simulated market moves between this read and the place
    # (fresh14 saw a buy at the best ask just read rest unfilled).
    ask = Decimal(sim.market("BTCUSDT")["best_ask"])
    through = (ask * Decimal("1.005")).quantize(Decimal("0.1"))
    taker = order_body(account, side="BUY", time_in_force="GTC", price=str(through))
    assert session.post(url, json=taker, timeout=5).status_code == 201
    assert session.delete(f"{url}/{placed['order_id']}", timeout=5).status_code == 200

    log = sim.admin("GET", f"/v1/log?account_id={account}").json()

    orders = {o["client_order_id"]: o for o in log["orders"]}
    assert set(orders) == {resting["client_order_id"], taker["client_order_id"]}
    canceled = orders[resting["client_order_id"]]
    assert canceled["created_ts_ms"] <= canceled["closed_ts_ms"] <= log["now_ms"]
    fills = log["fills"]
    assert fills, "a buy through the best ask takes liquidity"
    assert {f["client_order_id"] for f in fills} == {taker["client_order_id"]}
    assert len({f["event_id"] for f in fills}) == len(fills)
    other = sim.admin("GET", "/v1/log?account_id=someone-else").json()
    assert (other["orders"], other["fills"]) == ([], [])
