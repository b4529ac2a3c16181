"""The Order Service and matching of the simulator, over HTTP and engine.event.v1."""

from __future__ import annotations

from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from mmsvc.adapters.kafka import topics
from mmsvc.devstack import stack
from mmsvc.devstack.exchange.config import load_config
from mmsvc.devstack.exchange.orders import OrderServiceApp
from mmsvc.devstack.exchange.venue import Venue
from mmsvc.devstack.exchange.web import HttpService
from tests.fixtures.exchange import Exchange
from tests.fixtures.kafka import TopicReader
from tests.integration.exchange.conftest import below_touch, order_body

pytestmark = pytest.mark.integration

ENGINE = topics.ENGINE_EVENTS


def place(sim: Exchange, session: requests.Session, body: dict[str, Any]) -> requests.Response:
    return session.post(f"{sim.order_service_url}/v1/orders", json=body, timeout=5)


def open_orders(sim: Exchange, session: requests.Session, account: str) -> list[dict[str, Any]]:
    """The account's open orders, as the venue lists them."""
    url = f"{sim.order_service_url}/v1/orders"
    response = session.get(url, params={"account_id": account, "status": "OPEN"}, timeout=5)
    response.raise_for_status()
    return list(response.json()["orders"])


def events_of(
    reader: TopicReader, account: str, count: int, timeout: float = 10
) -> list[dict[str, Any]]:
    """The account's engine events, once at least ``count`` of them arrived."""

    def enough() -> list[dict[str, Any]]:
        events = reader.of(ENGINE, account_id=account)
        return events if len(events) >= count else []

    return reader.read_until(enough, timeout, f"{count} engine events of the account")


def test_resting_order_crossed_by_the_market_is_accepted_then_filled(
    sim, session, account, reader_factory
):
    reader = reader_factory([ENGINE], ["BTCUSDT"])
    price = below_touch(sim, "BTCUSDT", 1)
    placed = place(sim, session, order_body(account, price=price, quantity="0.0005"))
    assert placed.status_code == 201
    assert placed.json() == {
        "order_id": placed.json()["order_id"],
        "client_order_id": placed.json()["client_order_id"],
        "status": "NEW",
    }

    # A move fills what it crosses before it answers, so the venue's listing says at
    # once whether another is needed; the events follow on Kafka at their own pace.
    for _ in range(5):  # each move down trades through the order's price
        if not open_orders(sim, session, account):
            break
        sim.admin("POST", "/v1/markets/BTCUSDT/move", {"bps": -10}).raise_for_status()
    reader.read_until(
        lambda: reader.of(ENGINE, account_id=account, remaining_quantity="0"), 10, "the last fill"
    )

    accepted, *fills = reader.of(ENGINE, account_id=account)
    assert accepted["event_type"] == "ACCEPTED"
    assert accepted["order_id"] == placed.json()["order_id"]
    assert accepted["remaining_quantity"] == "0.0005"
    assert fills
    assert {f["event_type"] for f in fills} == {"FILL"}
    assert {f["fill_price"] for f in fills} == {price}  # a maker fills at its own price
    assert sum(Decimal(f["fill_quantity"]) for f in fills) == Decimal("0.0005")
    assert fills[-1]["remaining_quantity"] == "0"
    assert {(f["liquidity"], f["fee_asset"]) for f in fills} == {("MAKER", "USDT")}
    assert all(Decimal(f["fee"]) < 0 for f in fills)  # the maker rebate of the default config
    assert len({e["event_id"] for e in [accepted, *fills]}) == 1 + len(fills)


def test_a_large_order_fills_partially_trade_by_trade(sim, session, account, reader_factory):
    reader = reader_factory([ENGINE], ["BTCUSDT"])
    price = below_touch(sim, "BTCUSDT", 1)
    placed = place(sim, session, order_body(account, price=price, quantity="0.5000"))
    assert placed.status_code == 201
    for _ in range(3):  # each move down trades once through the order's price
        sim.admin("POST", "/v1/markets/BTCUSDT/move", {"bps": -5}).raise_for_status()

    events = events_of(reader, account, 4)
    fills = [e for e in events if e["event_type"] == "FILL"]
    remaining = [Decimal(f["remaining_quantity"]) for f in fills]
    assert len(fills) >= 3
    assert remaining[0] > 0  # a trade of at most 500 lots fills 5000 lots only partly
    assert remaining == sorted(remaining, reverse=True)
    assert sum(Decimal(f["fill_quantity"]) for f in fills) == Decimal("0.5") - remaining[-1]
    session.post(f"{sim.order_service_url}/v1/orders/cancel-all", json={"account_id": account})


def test_repeated_client_order_id_returns_the_first_order(sim, session, account, reader_factory):
    reader = reader_factory([ENGINE], ["BTCUSDT"])
    body = order_body(account, price=below_touch(sim, "BTCUSDT", 200))
    first = place(sim, session, body)
    again = place(sim, session, body)
    changed = place(sim, session, {**body, "price": below_touch(sim, "BTCUSDT", 300)})

    assert first.status_code == again.status_code == changed.status_code == 201
    assert first.json() == again.json() == changed.json()
    listed = session.get(f"{sim.order_service_url}/v1/orders", params={"account_id": account})
    assert [o["order_id"] for o in listed.json()["orders"]] == [first.json()["order_id"]]
    events_of(reader, account, 1)
    reader.read_for(1.0)  # listens on: a second event would arrive meanwhile
    assert [e["event_type"] for e in reader.of(ENGINE, account_id=account)] == ["ACCEPTED"]


def test_off_tick_price_is_rejected_with_the_contract_error_body(
    sim, session, account, reader_factory
):
    reader = reader_factory([ENGINE], ["BTCUSDT"])
    body = order_body(account, price="60000.05")
    rejected = place(sim, session, body)

    assert rejected.status_code == 422
    assert set(rejected.json()) == {"error"}
    assert set(rejected.json()["error"]) == {"code", "message"}
    assert rejected.json()["error"]["code"] == "INVALID_TICK_SIZE"
    (event,) = events_of(reader, account, 1)
    assert event["event_type"] == "REJECTED"
    assert event["client_order_id"] == body["client_order_id"]
    assert event["reason"] == "INVALID_TICK_SIZE"


def test_post_only_order_that_would_cross_is_rejected(sim, session, account):
    best_ask = Decimal(sim.market("BTCUSDT")["best_ask"])
    through = (best_ask * Decimal("1.005")).quantize(Decimal("0.1"))  # far through the touch
    rejected = place(sim, session, order_body(account, price=str(through)))
    assert rejected.status_code == 422
    assert rejected.json()["error"]["code"] == "POST_ONLY_WOULD_CROSS"


def test_crossing_gtc_order_takes_liquidity_at_the_book_price(
    sim, session, account, reader_factory
):
    reader = reader_factory([ENGINE], ["ETHUSDT"])
    best_ask = Decimal(sim.market("ETHUSDT")["best_ask"])
    body = order_body(
        account,
        symbol="ETHUSDT",
        time_in_force="GTC",
        price=str(best_ask + Decimal("1.00")),
        quantity="0.005",
    )
    assert place(sim, session, body).status_code == 201
    accepted, filled = events_of(reader, account, 2)[:2]
    assert (accepted["event_type"], filled["event_type"]) == ("ACCEPTED", "FILL")
    assert filled["liquidity"] == "TAKER"
    assert Decimal(filled["fill_price"]) <= best_ask + Decimal("1.00")
    assert Decimal(filled["fee"]) > 0


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"quantity": "0.00015"}, "INVALID_LOT_SIZE"),
        ({"quantity": "0.0001", "price": "40000.0"}, "MIN_NOTIONAL"),
        ({"account_type": "RETAIL"}, "INVALID_ACCOUNT_TYPE"),
        ({"symbol": "NOPEUSDT"}, "UNKNOWN_SYMBOL"),
    ],
)
def test_business_rules_reject_with_422(sim, session, account, overrides, code):
    rejected = place(sim, session, order_body(account, **overrides))
    assert rejected.status_code == 422
    assert rejected.json()["error"]["code"] == code


@pytest.mark.parametrize(
    "overrides",
    [{"price": 60000.0}, {"side": "HOLD"}, {"type": "MARKET"}, {"client_order_id": None}],
)
def test_malformed_orders_are_400(sim, session, account, overrides):
    rejected = place(sim, session, order_body(account, **overrides))
    assert rejected.status_code == 400
    assert set(rejected.json()["error"]) == {"code", "message"}


def test_cancel_all_cancels_and_emits_canceled(sim, session, account, reader_factory):
    reader = reader_factory([ENGINE], ["BTCUSDT", "ETHUSDT"])
    btc = below_touch(sim, "BTCUSDT", 200)
    eth = below_touch(sim, "ETHUSDT", 200)
    ids = [
        place(sim, session, order_body(account, price=btc)).json()["order_id"],
        place(sim, session, order_body(account, price=btc)).json()["order_id"],
        place(
            sim, session, order_body(account, symbol="ETHUSDT", price=eth, quantity="0.01")
        ).json()["order_id"],
    ]
    url = f"{sim.order_service_url}/v1/orders"
    open_btc = session.get(
        url, params={"account_id": account, "symbol": "BTCUSDT", "status": "OPEN"}
    )
    assert len(open_btc.json()["orders"]) == 2

    by_symbol = session.post(f"{url}/cancel-all", json={"account_id": account, "symbol": "BTCUSDT"})
    rest = session.post(f"{url}/cancel-all", json={"account_id": account})

    assert (by_symbol.json(), rest.json()) == ({"canceled": 2}, {"canceled": 1})
    assert session.get(url, params={"account_id": account, "status": "OPEN"}).json() == {
        "orders": []
    }
    events = events_of(reader, account, 6)
    assert sorted(e["order_id"] for e in events if e["event_type"] == "CANCELED") == sorted(ids)


def test_cancel_of_an_unknown_or_final_order_is_404(sim, session, account):
    order_id = place(
        sim, session, order_body(account, price=below_touch(sim, "BTCUSDT", 200))
    ).json()["order_id"]
    url = f"{sim.order_service_url}/v1/orders"
    assert session.delete(f"{url}/{order_id}").status_code == 200
    assert session.delete(f"{url}/{order_id}").status_code == 404
    assert session.delete(f"{url}/no-such-order").json()["error"]["code"] == "ORDER_NOT_FOUND"


@pytest.mark.usefixtures("sim")
def test_events_of_other_accounts_are_mixed_in(reader_factory):
    other_accounts = set(load_config().other_accounts)
    reader = reader_factory([ENGINE], ["BTCUSDT", "ETHUSDT", "SOL-PERP"])
    others = reader.read_until(
        lambda: [r for r in reader.of(ENGINE) if r["account_id"] in other_accounts],
        15,
        "an event of another account",
    )
    assert {r["event_type"] for r in others} & {"FILL", "ACCEPTED", "CANCELED"}


def test_order_service_keeps_one_connection_alive_across_orders(sim, session, account):
    """Every order on one keep-alive connection, as the service's client sends them.

    How fast it answers is a figure, not an assertion: the tick-to-order bench
    prints the same round trip as its floor (``baseline_bare_post_order_rtt``,
    ``make bench``).
    """
    url = f"{sim.order_service_url}/v1/orders"
    price = below_touch(sim, "BTCUSDT", 200)
    answers = [place(sim, session, order_body(account, price=price)) for _ in range(30)]

    assert [a.status_code for a in answers] == [201] * 30
    assert all(a.headers.get("Connection", "").lower() != "close" for a in answers)
    adapter = session.get_adapter(url)
    assert isinstance(adapter, requests.adapters.HTTPAdapter)
    pools = adapter.poolmanager.pools
    port = urlsplit(url).port
    keys = pools.keys()  # urllib3's RecentlyUsedContainer refuses iteration
    opened = [pools[key].num_connections for key in keys if key.key_port == port]
    assert opened == [1]  # the session's pool for the Order Service opened one connection
    session.post(f"{url}/cancel-all", json={"account_id": account})


def test_order_service_checks_the_bearer_token_when_the_deployment_asks():
    class Discard:
        def put(self, topic, key, record):
            pass

    service = HttpService(
        "orders",
        "127.0.0.1",
        stack.free_port(),
        OrderServiceApp(Venue(load_config(), Discard()), ("s3cret",)),
    )
    service.start()
    try:
        url = f"{service.url}/v1/orders"
        body = order_body("mm", price="60000.0")
        missing = requests.post(url, json=body, timeout=5)
        wrong = requests.post(url, json=body, headers={"Authorization": "Bearer nope"}, timeout=5)
        right = requests.post(url, json=body, headers={"Authorization": "Bearer s3cret"}, timeout=5)
    finally:
        service.stop()
    assert (missing.status_code, wrong.status_code, right.status_code) == (401, 401, 201)
    assert missing.json()["error"]["code"] == "UNAUTHENTICATED"
