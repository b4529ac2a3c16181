"""Each fault knob of the simulator, and the instrument lifecycle, shown by its effect."""

from __future__ import annotations

import time
from decimal import Decimal

import grpc
import pytest
import requests

from mmsvc.adapters.kafka import topics
from mmsvc.adapters.metadata.client import MetadataClient, MetadataUnavailableError
from mmsvc.devstack.exchange.venue import now_ms
from mmsvc.domain.model import InstrumentStatus
from tests.fixtures.exchange import Exchange
from tests.fixtures.waiting import wait_for
from tests.integration.exchange.conftest import below_touch, order_body

pytestmark = pytest.mark.integration

DEMO = ("BTCUSDT", "ETHUSDT", "SOL-PERP")


def timed_places(sim: Exchange, session: requests.Session, account: str, count: int) -> list[float]:
    price = below_touch(sim, "BTCUSDT", 200)
    durations = []
    for _ in range(count):
        started = time.perf_counter()
        response = session.post(
            f"{sim.order_service_url}/v1/orders", json=order_body(account, price=price), timeout=5
        )
        durations.append(time.perf_counter() - started)
        assert response.status_code == 201
    return durations


def test_order_latency_is_added_to_every_order_service_call(sim, session, account):
    """A lower bound the injected sleep guarantees, however busy the box: never an upper one."""
    timed_places(sim, session, account, 2)  # connect
    sim.set_faults(order_latency_ms=80)
    assert min(timed_places(sim, session, account, 10)) >= 0.08
    started = time.perf_counter()
    session.get(f"{sim.order_service_url}/v1/orders", params={"account_id": account}, timeout=5)
    assert time.perf_counter() - started >= 0.08


def test_reject_rate_rejects_that_share_of_orders_with_4xx(sim, session, account):
    sim.set_faults(reject_rate=1.0)
    url = f"{sim.order_service_url}/v1/orders"
    price = below_touch(sim, "BTCUSDT", 200)
    all_rejected = [session.post(url, json=order_body(account, price=price)) for _ in range(5)]
    assert {(r.status_code, r.json()["error"]["code"]) for r in all_rejected} == {
        (422, "INJECTED_REJECT")
    }
    sim.set_faults(reject_rate=0.5)
    mixed = {
        session.post(url, json=order_body(account, price=price)).status_code for _ in range(40)
    }
    assert mixed == {201, 422}


def test_refused_connections_until_the_knob_is_cleared(sim, session, account):
    url = f"{sim.order_service_url}/v1/orders"
    assert session.get(url, params={"account_id": account}, timeout=2).status_code == 200
    sim.set_faults(refuse_connections=True)
    with pytest.raises(requests.ConnectionError):
        session.get(url, params={"account_id": account}, timeout=2)  # kept-alive connection
    with pytest.raises(requests.ConnectionError):
        requests.get(url, params={"account_id": account}, timeout=2)  # a new one
    sim.clear_faults()
    assert session.get(url, params={"account_id": account}, timeout=2).status_code == 200


def test_unavailable_answers_503_with_the_error_body_until_cleared(sim, session, account):
    url = f"{sim.order_service_url}/v1/orders"
    price = below_touch(sim, "BTCUSDT", 200)
    sim.set_faults(unavailable=True)
    for response in (
        session.get(url, params={"account_id": account}, timeout=2),
        session.post(url, json=order_body(account, price=price), timeout=2),
    ):
        assert response.status_code == 503
        assert response.json()["error"]["code"] == "UNAVAILABLE"
    sim.clear_faults()
    listed = session.get(url, params={"account_id": account, "status": "OPEN"}, timeout=2)
    assert listed.status_code == 200
    assert listed.json()["orders"] == []  # the refused place created nothing


def test_paused_feed_sends_no_market_data(sim, reader_factory):
    reader = reader_factory(
        [topics.ORDERBOOK_SNAPSHOT, topics.ORDERBOOK_DELTA, topics.TRADES, topics.MARK], DEMO
    )
    sim.set_faults(feed_paused=True)
    paused_at = now_ms()
    sequences = {s: sim.market(s)["sequence"] for s in DEMO}
    time.sleep(1.5)  # deliberate: 1.5 s of silence, about 30 messages a symbol when running
    assert {s: sim.market(s)["sequence"] for s in DEMO} == sequences
    resumed_at = now_ms()
    sim.clear_faults()
    # Resuming starts with a snapshot of every symbol; once those are in, so is the pause.
    reader.read_until(
        lambda: (
            {r["symbol"] for r in reader.of(topics.ORDERBOOK_SNAPSHOT) if r["ts_ms"] >= resumed_at}
            == set(DEMO)
        ),
        10,
        "a snapshot of every symbol after the resume",
    )
    reader.read_for(0.3)  # the other topics' partitions a moment more, to see a straggler
    during = [s for s in reader.seen if paused_at + 50 < s.record["ts_ms"] < resumed_at]
    assert during == []
    assert any(s.record["ts_ms"] < paused_at for s in reader.seen)  # it was talking before


def test_halt_emits_the_halt_event_marks_the_instrument_halted_and_rejects_orders(
    sim, session, account, reader_factory
):
    reader = reader_factory([topics.INSTRUMENT_HALT, topics.INSTRUMENT_RESUME], ["ETHUSDT"])
    metadata = MetadataClient(sim.metadata_grpc_url)
    price = below_touch(sim, "ETHUSDT", 200)
    resting = session.post(
        f"{sim.order_service_url}/v1/orders",
        json=order_body(account, symbol="ETHUSDT", price=price, quantity="0.01"),
    ).json()["order_id"]
    try:
        sim.admin("POST", "/v1/instruments/ETHUSDT/halt", {"reason": "circuit breaker"})
        halted = metadata.get_instrument("ETHUSDT")
        refused = session.post(
            f"{sim.order_service_url}/v1/orders",
            json=order_body(account, symbol="ETHUSDT", price=price, quantity="0.01"),
        )
        canceled = session.delete(f"{sim.order_service_url}/v1/orders/{resting}")
    finally:
        sim.admin("POST", "/v1/instruments/ETHUSDT/resume", {})
    # Two topics, read in no set order: the resume can be read before the halt (fresh17).
    reader.read_until(
        lambda: reader.of(topics.INSTRUMENT_HALT) and reader.of(topics.INSTRUMENT_RESUME),
        10,
        "the halt and the resume events",
    )

    assert halted is not None
    assert halted.status is InstrumentStatus.HALTED
    assert (refused.status_code, refused.json()["error"]["code"]) == (422, "INSTRUMENT_HALTED")
    assert canceled.status_code == 200  # cancels still work on a halted instrument
    (halt,) = reader.of(topics.INSTRUMENT_HALT)
    assert (halt["symbol"], halt["reason"]) == ("ETHUSDT", "circuit breaker")
    assert reader.of(topics.INSTRUMENT_RESUME)[0]["reason"] is None
    resumed = metadata.get_instrument("ETHUSDT")
    assert resumed is not None
    assert resumed.status is InstrumentStatus.TRADING
    metadata.close()


def test_instrument_created_on_demand_is_announced_and_served(sim, reader_factory):
    reader = reader_factory([topics.INSTRUMENT_CREATED, topics.ORDERBOOK_SNAPSHOT], ["NEWCOINUSDT"])
    body = {
        "symbol": "NEWCOINUSDT",
        "base_asset": "NEWCOIN",
        "quote_asset": "USDT",
        "kind": "SPOT",
        "tick_size": "0.0001",
        "lot_size": "1",
        "min_notional": "5",
        "mid": "1.2345",
        "msgs_per_s": 5,
    }
    assert sim.admin("POST", "/v1/instruments", body).status_code == 201
    assert sim.admin("POST", "/v1/instruments", body).json()["error"]["code"] == "INSTRUMENT_EXISTS"
    # Two topics: either may be read first.
    reader.read_until(
        lambda: reader.of(topics.ORDERBOOK_SNAPSHOT) and reader.of(topics.INSTRUMENT_CREATED),
        10,
        "the created event and a snapshot",
    )
    (created,) = reader.of(topics.INSTRUMENT_CREATED)
    assert {k: v for k, v in created.items() if k != "ts_ms"} == {
        **{k: v for k, v in body.items() if k not in ("mid", "msgs_per_s")},
        "status": "TRADING",
    }
    with MetadataClient(sim.metadata_grpc_url) as metadata:
        served = metadata.get_instrument("NEWCOINUSDT")
    assert served is not None
    assert str(served.tick_size) == "0.0001"


def test_metadata_unavailable_makes_calls_fail_with_unavailable(sim):
    sim.set_faults(metadata_unavailable=True)
    with (
        MetadataClient(sim.metadata_grpc_url) as metadata,
        pytest.raises(MetadataUnavailableError) as raised,
    ):
        metadata.get_instrument("BTCUSDT")
    assert raised.value.code == grpc.StatusCode.UNAVAILABLE


def test_unknown_fault_knob_is_400_and_faults_read_back(sim):
    response = sim.admin("POST", "/v1/faults", {"chaos_monkey": True})
    assert response.status_code == 400
    assert sim.set_faults(reject_rate=0.25)["reject_rate"] == 0.25
    assert sim.admin("GET", "/v1/faults").json()["reject_rate"] == 0.25


def test_paused_symbols_holds_back_only_those_symbols(sim):
    sim.set_faults(paused_symbols=["BTCUSDT"])
    before = {s: sim.market(s)["sequence"] for s in ("BTCUSDT", "ETHUSDT")}
    # Both run at 20 messages a second: once ETHUSDT moved on 10, BTCUSDT would have too.
    wait_for(
        lambda: sim.market("ETHUSDT")["sequence"] >= before["ETHUSDT"] + 10, 10, "ETHUSDT moving"
    )
    assert sim.market("BTCUSDT")["sequence"] == before["BTCUSDT"]


def test_instrument_update_is_announced_and_regrids_the_book(sim, reader_factory):
    symbol = "UPDTEST"
    reader = reader_factory([topics.INSTRUMENT_UPDATED, topics.ORDERBOOK_SNAPSHOT], [symbol])
    body = {"symbol": symbol, "base_asset": "UPD", "quote_asset": "USDT", "kind": "PERPETUAL"}
    body |= {"tick_size": "0.01", "lot_size": "0.1", "min_notional": "5", "mid": "20"}
    assert sim.admin("POST", "/v1/instruments", body).status_code == 201
    updated_at = now_ms()
    patched = sim.admin("PATCH", f"/v1/instruments/{symbol}", {"tick_size": "0.05"})
    assert patched.status_code == 200
    sim.admin("POST", f"/v1/markets/{symbol}/snapshot").raise_for_status()
    reader.read_until(
        lambda: (
            reader.of(topics.INSTRUMENT_UPDATED)
            and any(s["ts_ms"] >= updated_at for s in reader.of(topics.ORDERBOOK_SNAPSHOT))
        ),
        10,
        "the updated event and a snapshot after it",
    )
    (update,) = reader.of(topics.INSTRUMENT_UPDATED)
    assert (update["tick_size"], update["kind"], update["status"]) == (
        "0.05",
        "PERPETUAL",
        "TRADING",
    )
    latest = max(reader.of(topics.ORDERBOOK_SNAPSHOT), key=lambda s: s["sequence"])
    assert all(Decimal(r["price"]) % Decimal("0.05") == 0 for r in latest["bids"] + latest["asks"])
    with MetadataClient(sim.metadata_grpc_url) as metadata:
        served = metadata.get_instrument(symbol)
    assert served is not None
    assert served.tick_size == Decimal("0.05")
