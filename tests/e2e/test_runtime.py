"""The runtime as operators meet it: requotes, fills and skew, crashes, restarts, shadow mode."""

from __future__ import annotations

import os
import signal
import time
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from mmsvc.adapters.db.fills import FillRepository
from mmsvc.adapters.kafka import topics
from mmsvc.adapters.zmq import protocol
from tests.e2e.conftest import Service, TopicReader, add_config, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def status(service: Service, symbol: str) -> dict[str, Any]:
    code, body = service.command(protocol.Command.STATUS, symbol)
    assert code == 200, body
    return body


def start(service: Service, symbols: list[str], enable: bool = True) -> None:
    service.start("supervisor")
    service.start("outbox")
    service.wait_ready(symbols)
    for symbol in symbols if enable else []:
        code, body = service.command(protocol.Command.ENABLE, symbol)
        assert code == 200, body


def order_prices(service: Service, symbol: str) -> set[tuple[str, Decimal]]:
    return {(o["side"], Decimal(o["price"])) for o in service.open_orders(symbol)}


def skew(quote: dict[str, Any]) -> tuple[Decimal, Decimal]:
    """How far the level-0 bid and ask sit below and above the quote's mid."""
    level = quote["levels"][0]
    mid = Decimal(quote["mid"])
    return mid - Decimal(level["bid"]["price"]), Decimal(level["ask"]["price"]) - mid


def test_requotes_on_a_move_and_leans_on_inventory_after_a_fill(service_factory) -> None:
    service = service_factory()
    add_config(
        service.sessions,
        "BTCUSDT",
        base_spread_bps=20,
        max_position_usdt=500,
        inventory_skew_factor="0.5",
        order_size_usdt=100,
    )
    start(service, ["BTCUSDT"])
    before = wait_for(
        lambda: len(service.open_orders("BTCUSDT")) == 2 and order_prices(service, "BTCUSDT"),
        30,
        "two quotes",
    )
    flat = skew(status(service, "BTCUSDT")["last_quote"])
    assert flat[0] == pytest.approx(flat[1], abs=Decimal("0.2"))  # no inventory: symmetric

    # The market trades down through our bid: we buy, and the book moves.
    service.exchange.admin("POST", "/v1/markets/BTCUSDT/move", {"bps": -40}).raise_for_status()
    wait_for(lambda: Decimal(status(service, "BTCUSDT")["position"]) > 0, 30, "a fill")
    after = wait_for(
        lambda: (p := order_prices(service, "BTCUSDT")) and len(p) == 2 and p != before and p,
        30,
        "requoted orders",
    )
    assert max(price for _, price in after) < max(price for _, price in before)

    def leaning() -> tuple[Decimal, Decimal] | None:
        quote = status(service, "BTCUSDT")["last_quote"]
        below, above = skew(quote)
        return (below, above) if below > above + Decimal("1") else None

    below, above = wait_for(leaning, 30, "quotes leaning against a long position")
    # Long inventory lowers both: the bid is further below mid, the ask closer above it.
    assert below > flat[0] and above < flat[1]


def test_a_killed_worker_returns_paused_with_its_position_and_others_keep_quoting(
    service_factory,
) -> None:
    service = service_factory()
    # A wide spread: the random walk never reaches our quotes, only the deliberate move does,
    # so the position is still when we kill the worker.
    add_config(service.sessions, "BTCUSDT", base_spread_bps=200)
    add_config(service.sessions, "ETHUSDT")
    start(service, ["BTCUSDT", "ETHUSDT"])
    wait_for(lambda: len(service.open_orders("BTCUSDT")) == 2, 30, "BTC quotes")
    wait_for(lambda: len(service.open_orders("ETHUSDT")) == 2, 30, "ETH quotes")
    service.exchange.admin("POST", "/v1/markets/BTCUSDT/move", {"bps": -300}).raise_for_status()
    position = wait_for(
        lambda: (p := Decimal(status(service, "BTCUSDT")["position"])) > 0 and p, 30, "a fill"
    )
    time.sleep(0.5)  # let every fill of the move land
    position = Decimal(status(service, "BTCUSDT")["position"])
    pid = int(status(service, "BTCUSDT")["pid"])

    os.kill(pid, signal.SIGKILL)

    wait_for(lambda: service.open_orders("BTCUSDT") == [], 30, "BTC orders canceled (D2)")
    back = wait_for(
        lambda: (
            (code_body := service.command(protocol.Command.STATUS, "BTCUSDT"))[0] == 200
            and code_body[1]["pid"] != pid
            and code_body[1]
        ),
        60,
        "the restarted worker",
    )
    assert back["state"] == "PAUSED"
    assert Decimal(back["position"]) == position
    assert service.state("BTCUSDT").state.value == "PAUSED"
    # ETH never noticed: still ACTIVE, still quoting (possibly requoted meanwhile).
    assert status(service, "ETHUSDT")["state"] == "ACTIVE"
    assert len(service.open_orders("ETHUSDT")) == 2


def test_a_restart_pauses_everything_and_rebuilds_positions_from_fills(service_factory) -> None:
    service = service_factory()
    add_config(service.sessions, "BTCUSDT", base_spread_bps=200)  # only our move fills
    start(service, ["BTCUSDT"])
    wait_for(lambda: len(service.open_orders("BTCUSDT")) == 2, 30, "quotes")
    service.exchange.admin("POST", "/v1/markets/BTCUSDT/move", {"bps": 300}).raise_for_status()
    wait_for(lambda: Decimal(status(service, "BTCUSDT")["position"]) < 0, 30, "a short fill")
    time.sleep(0.5)
    before = status(service, "BTCUSDT")

    service.stop("supervisor")
    assert service.open_orders() == []  # SIGTERM cancels every order before exiting
    service.start("supervisor")
    service.wait_ready(["BTCUSDT"])

    after = status(service, "BTCUSDT")
    assert after["state"] == "PAUSED"
    assert service.state("BTCUSDT").state.value == "PAUSED"
    assert after["position"] == before["position"]
    assert after["realized_pnl_usdt"] == before["realized_pnl_usdt"]
    time.sleep(1.0)
    assert service.open_orders() == []  # never auto-starts


def test_shadow_mode_places_nothing_and_publishes_simulated_quotes(
    service_factory, kafka_bootstrap: str, registry_url: str
) -> None:
    service = service_factory(MM_SHADOW_MODE="true")
    add_config(service.sessions, "ETHUSDT", num_levels=2)
    reader = TopicReader(kafka_bootstrap, registry_url, topics.QUOTE_SIMULATED)
    try:
        since = time.time_ns() // 1_000_000
        start(service, ["ETHUSDT"])

        def simulated() -> list[dict[str, Any]]:
            return [r for key, r in reader.poll(0.3) if key == "ETHUSDT" and r["ts_ms"] >= since]

        records = wait_for(lambda: len(simulated()) >= 2 and simulated(), 30, "simulated quotes")
        levels = {r["level"] for r in records}
        assert levels == {0, 1}
        first = records[0]
        assert Decimal(first["bid_price"]) < Decimal(first["mid"]) < Decimal(first["ask_price"])
        orders = service.exchange.admin("GET", f"/v1/orders?account_id={service.account}")
        assert orders.json()["orders"] == []  # D18: no Order Service call at all
    finally:
        reader.close()


def test_fills_replayed_while_metadata_is_down_are_kept_and_counted_once_it_is_back(
    service_factory,
) -> None:
    first = service_factory()
    add_config(first.sessions, "BTCUSDT", base_spread_bps=200)
    start(first, ["BTCUSDT"])
    wait_for(lambda: len(first.open_orders("BTCUSDT")) == 2, 30, "quotes")
    first.exchange.admin("POST", "/v1/markets/BTCUSDT/move", {"bps": -300}).raise_for_status()
    wait_for(lambda: Decimal(status(first, "BTCUSDT")["position"]) > 0, 30, "a fill")
    time.sleep(0.5)
    position = status(first, "BTCUSDT")["position"]
    first.stop("supervisor")

    # The same account on a new database and consumer group: engine.event.v1 is
    # replayed from the start (D15) while the Metadata Service is down.
    second = service_factory(SYSTEM_ACCOUNT_ID=first.account)
    add_config(second.sessions, "BTCUSDT", base_spread_bps=200)
    second.exchange.set_faults(metadata_unavailable=True)
    start(second, ["BTCUSDT"], enable=False)
    # Replayed md.instrument.* may teach the instrument first (D4); either way no fill is lost.
    wait_for(lambda: _fill_rows(second) > 0, 30, "replayed fills recorded")
    second.exchange.clear_faults()
    back = wait_for(
        lambda: (s := status(second, "BTCUSDT"))["instrument_known"] and s, 30, "the instrument"
    )
    assert back["position"] == position


def _fill_rows(service: Service) -> int:
    with service.sessions() as session:
        return len(FillRepository(session).list_for_symbol("BTCUSDT"))


def test_moves_that_fill_us_never_leave_a_crossing_quote(service_factory) -> None:
    """A fill can beat the move's book message: no quote may be placed on the older book."""
    service = service_factory()
    add_config(service.sessions, "BTCUSDT", base_spread_bps=10, max_position_usdt=100000)
    start(service, ["BTCUSDT"])
    wait_for(lambda: len(service.open_orders("BTCUSDT")) == 2, 30, "quotes")
    for bps in (-25, 25, -25, 25, -25, 25, -25, 25):
        service.exchange.admin("POST", "/v1/markets/BTCUSDT/move", {"bps": bps}).raise_for_status()
        time.sleep(0.4)
    orders = service.exchange.admin("GET", f"/v1/orders?account_id={service.account}").json()
    assert any(Decimal(o["filled_quantity"]) > 0 for o in orders["orders"])  # moves filled us
    with service.sessions() as session:  # every reject, 4xx or event, is recorded (D10)
        rejected = session.execute(
            text("SELECT count(*) FROM mm_orders WHERE status = 'REJECTED'")
        ).scalar_one()
    assert rejected == 0
    assert status(service, "BTCUSDT")["state"] == "ACTIVE"
