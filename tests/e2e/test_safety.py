"""The spec's Safety Constraints, each shown failing-closed from outside the service.

- DOES NOT auto-restart after a kill switch; ALWAYS requires manual intervention (D3).
- ALWAYS cancels all orders on ANY uncertainty: stale data (D7: pulls quotes,
  halts nothing, one event per episode) and a lost supervisor (D17).
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
from confluent_kafka import Producer

from mmsvc.adapters.kafka import topics
from mmsvc.adapters.kafka.codec import AvroCodec
from mmsvc.domain.state import Command
from tests.e2e.conftest import Service, ServiceFactory, add_config
from tests.fixtures.kafka import ReaderFactory
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SYMBOL = "ETHUSDT"
STALE_MS = 1500


def start(service: Service) -> None:
    service.start("supervisor")
    service.start("outbox")
    service.wait_ready([SYMBOL])
    assert service.command(Command.ENABLE, SYMBOL)[0] == 200
    wait_for(lambda: service.quotes(SYMBOL), 30, "quotes")


def test_a_kill_survives_a_restart_and_only_a_reset_clears_it(
    service_factory: ServiceFactory,
) -> None:
    service = service_factory()
    add_config(service.sessions, SYMBOL)
    start(service)
    assert service.command(Command.KILL, SYMBOL)[0] == 200
    wait_for(lambda: service.open_orders(SYMBOL) == [], 30, "orders canceled")

    service.stop("supervisor")
    service.start("supervisor")
    service.wait_ready([SYMBOL])

    state = service.state(SYMBOL)
    assert state is not None
    assert state.state.value == "HALTED"
    assert state.trigger is not None
    assert state.trigger.value == "MANUAL"
    code, body = service.command(Command.ENABLE, SYMBOL)
    assert code == 409
    assert body["state"] == "HALTED"
    time.sleep(1.0)  # deliberate: a second in which a wrongly enabled worker would quote
    assert service.open_orders(SYMBOL) == []

    assert service.command(Command.RESET, SYMBOL)[0] == 200
    assert service.state_name(SYMBOL) == "PAUSED"
    time.sleep(1.0)  # deliberate: a second in which a reset that resumed would quote
    assert service.open_orders(SYMBOL) == []  # a reset never resumes quoting by itself


def data_age_ms(service: Service) -> int:
    """The age of the worker's book, as its live status says."""
    status, body = service.command(Command.STATUS, SYMBOL)
    return int(body["data_age_ms"]) if status == 200 and body.get("data_age_ms") else 0


def test_stale_market_data_pulls_quotes_and_halts_nothing(
    service_factory: ServiceFactory, reader_factory: ReaderFactory
) -> None:
    service = service_factory()
    add_config(service.sessions, SYMBOL, check_staleness=True, staleness_threshold_ms=STALE_MS)
    reader = reader_factory([topics.RISK_TRIGGERED], [SYMBOL])
    start(service)
    since = time.time_ns() // 1_000_000
    service.exchange.set_faults(paused_symbols=[SYMBOL])
    wait_for(lambda: service.open_orders(SYMBOL) == [], 30, "quotes pulled on stale data")
    assert service.state_name(SYMBOL) == "ACTIVE"  # STALE_DATA halts nothing (D7)

    def stale_events() -> list[dict[str, Any]]:
        return [
            r for r in reader.of(topics.RISK_TRIGGERED, trigger="STALE_DATA") if r["ts_ms"] >= since
        ]

    reader.read_until(stale_events, 30, "a STALE_DATA event")
    # The pause acts at the feed's next tick, so a book message sent just before it can
    # arrive after the first detection and open a second, short episode (fresh22: two
    # events 1.4 s apart, the second on a book 1513 ms old). Once the book is older than
    # twice the threshold, no message is on its way: one episode from then on.
    wait_for(lambda: data_age_ms(service) > 2 * STALE_MS, 30, "the book stale for good")
    reader.read_for(0.5)
    episodes = len(stale_events())
    reader.read_for(2.0)  # listens on while the data stays stale: a per-tick event would come
    assert len(stale_events()) == episodes  # one per episode, not per tick
    service.exchange.clear_faults()
    wait_for(lambda: service.quotes(SYMBOL), 30, "quotes back with fresh data")


def test_workers_cancel_and_exit_when_their_supervisor_is_lost(
    service_factory: ServiceFactory,
) -> None:
    service = service_factory()
    add_config(service.sessions, SYMBOL)
    start(service)
    worker_pid = int(service.command(Command.STATUS, SYMBOL)[1]["pid"])
    supervisor = service.procs.pop("supervisor")
    supervisor.send_signal(signal.SIGKILL)  # no chance to clean up: the workers must
    supervisor.wait(10)
    wait_for(
        lambda: service.open_orders(SYMBOL) == [], 30, "orders canceled by the orphaned worker"
    )
    wait_for(lambda: not _alive(worker_pid), 30, "the orphaned worker gone")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie has exited
        return stat.read().split()[2] != "Z"


def test_malformed_messages_are_skipped_and_the_worker_keeps_going(
    service_factory: ServiceFactory, kafka_bootstrap: str, registry_url: str
) -> None:
    service = service_factory()
    # A wide spread keeps real fills out: position 0 then proves the nonsense fill was skipped.
    add_config(service.sessions, SYMBOL, base_spread_bps=200)
    start(service)
    pid = int(service.command(Command.STATUS, SYMBOL)[1]["pid"])
    codec = AvroCodec(registry_url)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    nonsense_fill = {
        "event_id": "bad-1",
        "event_type": "FILL",
        "symbol": SYMBOL,
        "order_id": "x",
        "client_order_id": "y",
        "account_id": service.account,
        "side": "BUY",
        "price": "abc",
        "quantity": "1",
        "fill_price": "not-a-number",
        "fill_quantity": "1",
        "remaining_quantity": "0",
        "fee": None,
        "fee_asset": None,
        "liquidity": None,
        "reason": None,
        "ts_ms": time.time_ns() // 1_000_000,
    }
    producer.produce(
        topics.ENGINE_EVENTS, codec.encode(topics.ENGINE_EVENTS, nonsense_fill), SYMBOL
    )
    producer.produce(topics.TRADES, b"\x00garbage that is not avro", SYMBOL)
    producer.flush(10)
    log = service.run_dir / "supervisor.log"
    wait_for(lambda: "dead letter stored" in log.read_text(), 30, "the nonsense fill refused")
    wait_for(lambda: "undecodable message skipped" in log.read_text(), 30, "the garbage logged")
    # A fill we cannot book is doubt about our position: held until an operator clears it (D24).
    wait_for(lambda: service.open_orders(SYMBOL) == [], 30, "quotes pulled by the dead letter")
    status = service.command(Command.STATUS, SYMBOL)[1]
    assert int(status["pid"]) == pid  # never crashed
    assert status["state"] == "PAUSED"
    assert status["position"] == "0"
