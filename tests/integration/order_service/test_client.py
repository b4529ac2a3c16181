"""OrderServiceClient against the real exchange simulator over HTTP.

Each test trades on an account of its own, so listings and cancel-alls see
only its orders; tests that turn a fault knob on clear it afterwards.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Iterator
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal

import pytest

from mmsvc.adapters.order_service.client import (
    Backoff,
    OpenOrder,
    OrderServiceClient,
    Outcome,
    PlaceRequest,
    RequestFailure,
)
from tests.fixtures.exchange import Exchange
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.integration

USER = "00000000-0000-0000-0000-000000000001"
TICKS = {"BTCUSDT": Decimal("0.1"), "ETHUSDT": Decimal("0.01")}
QUANTITY = {"BTCUSDT": Decimal("0.001"), "ETHUSDT": Decimal("0.01")}
# Generous for a shared 2-core machine; the fault tests set their own budgets.
TIMEOUT_S = 1.0


@pytest.fixture
def account() -> str:
    return str(uuid.uuid4())


@pytest.fixture
def client(exchange: Exchange, account: str) -> Iterator[OrderServiceClient]:
    client = OrderServiceClient(exchange.order_service_url, account, USER, TIMEOUT_S, pool_size=8)
    yield client
    client.cancel_all(None)
    client.close()


@pytest.fixture
def faults(exchange: Exchange) -> Iterator[Exchange]:
    """The simulator, with every fault knob cleared afterwards."""
    yield exchange
    exchange.clear_faults()


def resting(exchange: Exchange, symbol: str = "BTCUSDT", side: str = "BUY") -> PlaceRequest:
    """A post-only order 10% away from the mid, on the tick: it rests and never fills."""
    mid, tick = Decimal(exchange.market(symbol)["mid"]), TICKS[symbol]
    away, rounding = (
        (Decimal("0.9"), ROUND_FLOOR) if side == "BUY" else (Decimal("1.1"), ROUND_CEILING)
    )
    price = (mid * away / tick).to_integral_value(rounding) * tick
    return PlaceRequest(str(uuid.uuid4()), symbol, side, price, QUANTITY[symbol])


def open_ids(client: OrderServiceClient, symbol: str | None = None) -> set[str]:
    listed = client.list_open(symbol)
    assert isinstance(listed, list), listed
    return {order.order_id for order in listed}


def test_place_is_accepted_with_an_order_id_and_listed_open(
    exchange: Exchange, client: OrderServiceClient
) -> None:
    req = resting(exchange)
    result = client.place(req)
    assert result.outcome is Outcome.ACCEPTED, result
    assert result.order_id
    assert result.client_order_id == req.client_order_id
    listed = client.list_open("BTCUSDT")
    assert listed == [
        OpenOrder(
            result.order_id,
            req.client_order_id,
            "BTCUSDT",
            "BUY",
            req.price,
            req.quantity,
            "NEW",
            req.quantity,
        )
    ]


def test_a_repeated_client_order_id_returns_the_first_order(
    exchange: Exchange, client: OrderServiceClient
) -> None:
    req = resting(exchange)
    first, again = client.place(req), client.place(req)
    assert first.outcome is again.outcome is Outcome.ACCEPTED
    assert again.order_id == first.order_id
    assert open_ids(client) == {first.order_id}


def test_an_off_tick_price_is_rejected_with_the_contract_error_body(
    exchange: Exchange, client: OrderServiceClient
) -> None:
    req = resting(exchange)
    off_tick = PlaceRequest(
        str(uuid.uuid4()), "BTCUSDT", "BUY", req.price + Decimal("0.05"), req.quantity
    )
    result = client.place(off_tick)
    assert (result.outcome, result.code, result.order_id) == (
        Outcome.REJECTED,
        "INVALID_TICK_SIZE",
        None,
    )
    assert result.message
    assert open_ids(client) == set()


def test_cancel_cancels_and_a_second_cancel_is_not_found(
    exchange: Exchange, client: OrderServiceClient
) -> None:
    placed = client.place(resting(exchange))
    assert placed.order_id is not None
    assert client.cancel(placed.order_id).outcome is Outcome.CANCELED
    assert client.cancel(placed.order_id).outcome is Outcome.NOT_FOUND
    assert client.cancel(str(uuid.uuid4())).outcome is Outcome.NOT_FOUND
    assert open_ids(client) == set()


def test_cancel_all_counts_the_symbol_asked_then_the_whole_account(
    exchange: Exchange, client: OrderServiceClient
) -> None:
    reqs = [resting(exchange), resting(exchange, side="SELL"), resting(exchange, "ETHUSDT")]
    ids = [client.place(req).order_id for req in reqs]
    assert open_ids(client, "BTCUSDT") == set(ids[:2])
    assert open_ids(client, "ETHUSDT") == {ids[2]}
    btc = client.cancel_all("BTCUSDT")
    assert (btc.outcome, btc.canceled) == (Outcome.OK, 2)
    assert open_ids(client) == {ids[2]}
    rest = client.cancel_all(None)
    assert (rest.outcome, rest.canceled) == (Outcome.OK, 1)
    assert client.list_open(None) == []


def test_execute_sends_four_cancels_and_four_places_concurrently(
    exchange: Exchange, client: OrderServiceClient
) -> None:
    old = [client.place(resting(exchange)).order_id or "" for _ in range(4)]
    new = [resting(exchange, side="SELL") for _ in range(4)]
    batch = client.execute(old, new)
    assert [r.outcome for r in batch.cancels] == [Outcome.CANCELED] * 4
    assert [r.order_id for r in batch.cancels] == old
    assert [r.outcome for r in batch.places] == [Outcome.ACCEPTED] * 4
    assert [r.client_order_id for r in batch.places] == [r.client_order_id for r in new]
    assert open_ids(client) == {r.order_id for r in batch.places}


@pytest.mark.parametrize("latency_ms", [0, 5])
def test_a_batch_of_four_cancels_and_four_places_costs_about_one_round_trip(
    faults: Exchange, account: str, latency_ms: int
) -> None:
    """Results are asserted; the timings are printed, never asserted (D11)."""
    faults.set_faults(order_latency_ms=latency_ms)
    url = faults.order_service_url
    with OrderServiceClient(url, account, USER, TIMEOUT_S, pool_size=8) as client:
        client.execute([], [resting(faults) for _ in range(8)])  # open the connections
        single = _median_ms(client, faults, 0, 1, batch=False)
        in_a_row = _median_ms(client, faults, 4, 4, batch=False)
        batched = _median_ms(client, faults, 4, 4, batch=True)
        assert client.cancel_until_flat(None, deadline_s=5).flat
    print(
        f"\norder service, {latency_ms} ms added latency: one place {single:.2f} ms; "
        f"4 cancels + 4 places in a row {in_a_row:.2f} ms; execute() of the same {batched:.2f} ms"
    )


def _median_ms(
    client: OrderServiceClient, exchange: Exchange, cancels: int, places: int, *, batch: bool
) -> float:
    """Median of 7 rounds of canceling resting orders and placing new ones, results checked."""
    timings = []
    for _ in range(7):
        olds = [client.place(resting(exchange)).order_id or "" for _ in range(cancels)]
        news = [resting(exchange) for _ in range(places)]
        started = time.perf_counter()
        if batch:
            result = client.execute(olds, news)
            outcomes = [r.outcome for r in result.cancels] + [r.outcome for r in result.places]
        else:
            outcomes = [client.cancel(order_id).outcome for order_id in olds]
            outcomes += [client.place(req).outcome for req in news]
        timings.append(time.perf_counter() - started)
        assert outcomes == [Outcome.CANCELED] * cancels + [Outcome.ACCEPTED] * places
    return statistics.median(timings) * 1e3


def test_a_call_outliving_its_timeout_is_a_timeout_and_leaves_the_order_unknown(
    faults: Exchange, account: str
) -> None:
    faults.set_faults(order_latency_ms=200)
    with OrderServiceClient(faults.order_service_url, account, USER, 0.05) as client:
        req = resting(faults)
        assert client.place(req).outcome is Outcome.TIMEOUT
        assert client.cancel(str(uuid.uuid4())).outcome is Outcome.TIMEOUT
        # The simulator still runs timed-out requests late: aimed at another
        # symbol, this cancel-all cannot cancel the order looked for below.
        assert client.cancel_all("ETHUSDT").outcome is Outcome.TIMEOUT
        listed = client.list_open("ETHUSDT")
        assert isinstance(listed, RequestFailure)
        assert listed.outcome is Outcome.TIMEOUT
        faults.clear_faults()
        # D10: the timed-out order was placed all the same; only a listing tells.
        wait_for(
            lambda: _listed(client, req.client_order_id), 5, "the timed-out order in the listing"
        )
        assert client.cancel_until_flat("BTCUSDT", deadline_s=5).flat


def _listed(client: OrderServiceClient, client_order_id: str) -> bool:
    listed = client.list_open("BTCUSDT")
    return isinstance(listed, list) and any(o.client_order_id == client_order_id for o in listed)


def test_refused_connections_are_errors_and_the_client_recovers(
    faults: Exchange, client: OrderServiceClient
) -> None:
    assert client.place(resting(faults)).outcome is Outcome.ACCEPTED  # a keep-alive connection
    req = resting(faults)
    faults.set_faults(refuse_connections=True)
    try:
        assert client.place(req).outcome is Outcome.ERROR
        assert client.cancel(str(uuid.uuid4())).outcome is Outcome.ERROR
        assert client.cancel_all(None).outcome is Outcome.ERROR
        listed = client.list_open(None)
        assert isinstance(listed, RequestFailure)
        assert listed.outcome is Outcome.ERROR
        assert client.execute(["x"], [req]).places[0].outcome is Outcome.ERROR
    finally:
        faults.clear_faults()
    assert client.place(req).outcome is Outcome.ACCEPTED


def test_cancel_until_flat_ends_with_no_open_order(
    exchange: Exchange, client: OrderServiceClient
) -> None:
    batch = client.execute(
        [], [resting(exchange) for _ in range(3)] + [resting(exchange, "ETHUSDT")]
    )
    assert {r.outcome for r in batch.places} == {Outcome.ACCEPTED}
    result = client.cancel_until_flat("BTCUSDT", deadline_s=5)
    assert (result.flat, result.attempts, result.remaining) == (True, 1, 0)
    assert open_ids(client, "BTCUSDT") == set()
    assert len(open_ids(client, "ETHUSDT")) == 1


def test_cancel_until_flat_outlasts_a_slow_order_service(faults: Exchange, account: str) -> None:
    with OrderServiceClient(faults.order_service_url, account, USER, 0.05) as client:
        assert client.place(resting(faults)).outcome is Outcome.ACCEPTED
        faults.set_faults(order_latency_ms=120)
        result = client.cancel_until_flat("BTCUSDT", deadline_s=5, backoff=Backoff(0.01))
        faults.clear_faults()
        # Requests of 50 ms then 100 ms time out; the kill goes on past the budget (D7).
        assert result.flat, result
        assert result.attempts >= 3, result
        assert open_ids(client) == set()


def test_cancel_until_flat_gives_up_at_its_deadline_when_refused(
    faults: Exchange, client: OrderServiceClient
) -> None:
    assert client.place(resting(faults)).outcome is Outcome.ACCEPTED
    faults.set_faults(refuse_connections=True)
    try:
        result = client.cancel_until_flat("BTCUSDT", deadline_s=0.3, backoff=Backoff(0.02))
    finally:
        faults.clear_faults()
    assert (result.flat, result.remaining) == (False, None)
    assert result.attempts > 1
    assert client.cancel_until_flat("BTCUSDT", deadline_s=5).flat
