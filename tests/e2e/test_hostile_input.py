"""Hostile Kafka input against the running service: refused at the edge, never a crash (D24, D31).

A snapshot with a NaN price, a delta with a negative size and a value whose
symbol is not its key (market data of BTCUSDT) are counted and skipped; the
book they would have touched is unknown until the venue's next snapshot. A
fill of our account with a negative quantity (ETHUSDT) is dead-lettered: it
is listed by the admin API, ETHUSDT's quotes are pulled and stay pulled
(enable refused) until an operator clears it, after which it stays PAUSED.
Every worker keeps its pid throughout.
"""

from __future__ import annotations

import time
import uuid
from functools import partial
from typing import Any

import pytest
from confluent_kafka import Producer

from mmsvc.adapters.kafka import topics
from mmsvc.adapters.kafka.codec import AvroCodec
from mmsvc.devstack import stack
from mmsvc.domain.state import Command
from tests.e2e.conftest import Service, ServiceFactory, add_config
from tests.e2e.test_observability import gauge, scrape
from tests.fixtures.waiting import wait_for
from tests.integration.admin.conftest import serve

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

BOOK, HELD = "BTCUSDT", "ETHUSDT"


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def rejected(service: Service, topic: str, reason: str) -> float:
    return sum(gauge(scrape(service), "mm_messages_rejected_total", topic=topic, reason=reason))


def pid_of(service: Service, symbol: str) -> int:
    return int(service.command(Command.STATUS, symbol)[1]["pid"])


def hostile_messages(account: str) -> list[tuple[str, str, dict[str, Any]]]:
    ts = now_ms()
    snapshot = {
        "symbol": BOOK,
        "sequence": 1,
        "bids": [{"price": "NaN", "size": "1"}],
        "asks": [{"price": "100", "size": "1"}],
        "ts_ms": ts,
    }
    delta = {
        "symbol": BOOK,
        "sequence": 2,
        "changes": [{"side": "ASK", "price": "100", "size": "-5"}],
        "ts_ms": ts,
    }
    not_its_key = {"symbol": HELD, "mark_price": "1", "index_price": None, "ts_ms": ts}
    fill = {
        "event_id": f"hostile-{uuid.uuid4()}",
        "event_type": "FILL",
        "symbol": HELD,
        "order_id": "o-hostile",
        "client_order_id": str(uuid.uuid4()),
        "account_id": account,
        "side": "BUY",
        "price": "100",
        "quantity": "1",
        "fill_price": "100",
        "fill_quantity": "-1",
        "remaining_quantity": "0",
        "fee": None,
        "fee_asset": None,
        "liquidity": "MAKER",
        "reason": None,
        "ts_ms": ts,
    }
    return [
        (topics.ORDERBOOK_SNAPSHOT, BOOK, snapshot),
        (topics.ORDERBOOK_DELTA, BOOK, delta),
        (topics.MARK, BOOK, not_its_key),
        (topics.ENGINE_EVENTS, HELD, fill),
    ]


def quoting_both_sides(service: Service, symbol: str) -> bool:
    """Two orders resting for the symbol (one bid, one ask)."""
    return len(service.open_orders(symbol)) == 2


def test_hostile_values_are_counted_skipped_or_dead_lettered_and_no_worker_dies(
    service_factory: ServiceFactory, kafka_bootstrap: str, registry_url: str
) -> None:
    service = service_factory()
    for symbol in (BOOK, HELD):
        add_config(service.sessions, symbol, base_spread_bps=200)  # wide: no real fills
    service.start("metrics")
    service.start("supervisor")
    service.start("outbox")
    service.wait_ready([BOOK, HELD])
    for symbol in (BOOK, HELD):
        assert service.command(Command.ENABLE, symbol)[0] == 200
        wait_for(partial(quoting_both_sides, service, symbol), 30, f"{symbol} quotes")
    pids = {symbol: pid_of(service, symbol) for symbol in (BOOK, HELD)}
    admin_env = {**service.env, "HTTP_PORT": str(stack.free_port()), "ADMIN_WORKERS": "1"}

    codec = AvroCodec(registry_url)
    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    for topic, key, record in hostile_messages(service.account):
        producer.produce(topic, codec.encode(topic, record), key)
    producer.flush(10)

    for topic, reason in (
        (topics.ORDERBOOK_SNAPSHOT, "non_finite_price"),
        (topics.ORDERBOOK_DELTA, "negative_size"),
        (topics.MARK, "symbol_key_mismatch"),
        (topics.ENGINE_EVENTS, "negative_quantity"),
    ):
        wait_for(partial(rejected, service, topic, reason), 30, f"{topic} {reason}")
    wait_for(
        lambda: gauge(scrape(service), "mm_dead_letters", symbol=HELD) == [1.0],
        30,
        "the dead letter gauge",
    )
    wait_for(lambda: service.open_orders(HELD) == [], 30, f"{HELD} quotes pulled")
    assert service.state_name(HELD) == "PAUSED"
    code, body = service.command(Command.ENABLE, HELD)
    assert code == 409
    assert body["error"]["code"] == "DEAD_LETTER"
    # The book goes unknown, then the venue's next snapshot brings BTCUSDT's quotes back.
    wait_for(lambda: len(service.open_orders(BOOK)) == 2, 30, f"{BOOK} quoting again")

    with serve(service.run_dir, admin_env, "admin-api") as admin:
        listed = admin.call("GET", f"/v1/mm/dead-letters?symbol={HELD}", token=None).json()
        [letter] = listed["dead_letters"]
        assert letter["reason"] == "negative_quantity"
        assert letter["cleared"] is False
        time.sleep(1.5)  # the hold is not a moment: still no quotes, still refused
        assert service.open_orders(HELD) == []

        cleared = admin.call(
            "POST",
            f"/v1/mm/dead-letters/{letter['id']}/clear",
            token=None,
            body={"action": "discard", "reason": "venue bug; position checked by hand"},
        )
        assert cleared.status_code == 200, cleared.text

    assert service.state_name(HELD) == "PAUSED"  # clearing never resumes (D31)
    assert service.command(Command.ENABLE, HELD)[0] == 200
    wait_for(lambda: len(service.open_orders(HELD)) == 2, 30, f"{HELD} quoting after the clear")
    assert {symbol: pid_of(service, symbol) for symbol in (BOOK, HELD)} == pids
    codec.close()
