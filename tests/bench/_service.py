"""The whole service seen from outside, for the tick-to-order benchmark.

The service's processes are started as tests/e2e/conftest.py starts them (the
supervisor and the outbox relay, with their environment) and driven over the
control channel; the simulator over its admin endpoint and Order Service; the
book deltas it publishes watched by a plain consumer of our own. Nothing here
reaches inside a running process.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any, NamedTuple

import psycopg
import requests
from confluent_kafka import OFFSET_END, Consumer, TopicPartition
from prometheus_client import CollectorRegistry, multiprocess

from mmsvc.adapters.db.configs import ConfigRepository
from mmsvc.adapters.db.engine import make_engine, make_session_factory
from mmsvc.adapters.db.records import ConfigFields
from mmsvc.adapters.kafka import topics
from mmsvc.adapters.kafka.codec import AvroCodec
from mmsvc.adapters.kafka.consumer import consumer_config
from mmsvc.devstack import services
from mmsvc.domain.state import Command
from tests.bench._stack import SYMBOLS, BenchStack, ExchangeUrls, control
from tests.fixtures.waiting import wait_for

BENCH_USER = "00000000-0000-0000-0000-0000000000b0"


class Move(NamedTuple):
    """One move: its symbol, when it was asked for (wall ns), its last book sequence."""

    symbol: str
    t0_ns: int
    sequence: int


def service_env(
    bench: BenchStack,
    urls: ExchangeUrls,
    kafka: str,
    registry: str,
    config: ConfigFields,
    symbols: Sequence[str] = SYMBOLS,
) -> dict[str, str]:
    """A migrated scratch database with ``config`` for each of ``symbols``; the service's env.

    As tests/e2e/conftest.py builds it; every other setting keeps its default
    (KILL_SWITCH_RESPONSE_TIMEOUT_MS among them: 50 ms).
    """
    database_url = bench.database("service", migrate=True)
    sessions = make_session_factory(make_engine(database_url))
    with sessions.begin() as session:
        for symbol in symbols:
            ConfigRepository(session).create(symbol, "bench", config)
    sessions.kw["bind"].dispose()
    sockets = bench.run_dir / "sockets"
    sockets.mkdir()
    tag = uuid.uuid4().hex[:8]
    return {
        "POSTGRES_URL": database_url,
        "REDIS_URL": services.REDIS_URL,
        "REDIS_KEY_PREFIX": f"mmsvc-bench-{tag}:",
        "KAFKA_BROKERS": kafka,
        "SCHEMA_REGISTRY_URL": registry,
        "ORDER_SERVICE_URL": urls.order_service,
        "METADATA_SERVICE_GRPC_URL": urls.metadata_grpc,
        "SYSTEM_ACCOUNT_ID": str(uuid.uuid4()),
        "DISABLE_AUTH": "true",
        "KAFKA_GROUP_ID": f"mmsvc-bench-{tag}",
        "MMSVC_RUN_DIR": str(bench.run_dir),
        "MMSVC_WORKER_SOCKET_DIR": str(sockets),
        "MMSVC_CONTROL_ENDPOINT": f"ipc://{sockets}/control.sock",
        "PROMETHEUS_MULTIPROC_DIR": str(bench.run_dir / "prometheus"),
        "LOG_LEVEL": "INFO",
    }


class Venue:
    """The simulator seen from the bench: its admin endpoint and its Order Service."""

    def __init__(self, urls: ExchangeUrls, account: str) -> None:
        self.urls, self.account = urls, account
        self.admin = requests.Session()
        self.orders = requests.Session()

    def move(self, symbol: str, bps: int) -> int:
        """Move the market; the sequence of its last book delta."""
        response = self.admin.post(
            f"{self.urls.admin}/v1/markets/{symbol}/move", json={"bps": bps}, timeout=5
        )
        response.raise_for_status()
        return int(response.json()["sequence"])

    def retune(self, symbol: str, changes: dict[str, Any]) -> None:
        """Change a market's tunables (rate, volatility, jumps) from its next step on."""
        response = self.admin.patch(
            f"{self.urls.admin}/v1/markets/{symbol}", json=changes, timeout=5
        )
        response.raise_for_status()

    def our_orders(self, status: str | None = None) -> list[dict[str, Any]]:
        params = {"account_id": self.account, **({"status": status} if status else {})}
        response = self.admin.get(f"{self.urls.admin}/v1/orders", params=params, timeout=10)
        response.raise_for_status()
        return list(response.json()["orders"])

    def place_far_bid(self, account: str, symbol: str, price: str, quantity: str) -> None:
        """One POST /v1/orders far from the touch, for the round-trip baseline."""
        body = {
            "client_order_id": str(uuid.uuid4()),
            "symbol": symbol,
            "side": "BUY",
            "type": "LIMIT",
            "time_in_force": "POST_ONLY",
            "price": price,
            "quantity": quantity,
            "account_id": account,
            "user_id": BENCH_USER,
            "account_type": "SYSTEM_MARKET_MAKER",
        }
        response = self.orders.post(f"{self.urls.order_service}/v1/orders", json=body, timeout=5)
        if response.status_code != 201:
            raise RuntimeError(f"baseline order refused: {response.status_code} {response.text}")

    def cancel_all(self, account: str) -> None:
        self.orders.post(
            f"{self.urls.order_service}/v1/orders/cancel-all",
            json={"account_id": account},
            timeout=5,
        ).raise_for_status()

    def close(self) -> None:
        self.admin.close()
        self.orders.close()


def start_service(bench: BenchStack, env: dict[str, str], venue: Venue) -> None:
    """Supervisor and outbox relay; every symbol enabled and quoting both sides."""
    bench.start_service("supervisor", "mmsvc.processes.supervisor.main", env)
    bench.start_service("outbox", "mmsvc.processes.outbox", env)
    endpoint = env["MMSVC_CONTROL_ENDPOINT"]

    def workers_alive() -> bool:
        if not bench.alive("supervisor"):
            raise RuntimeError("the supervisor exited; see its log")
        try:
            status, body = control(endpoint, Command.PING)
        except TimeoutError:
            return False
        workers = body.get("workers", {})
        return status == 200 and all(workers.get(s, {}).get("alive") for s in SYMBOLS)

    wait_for(workers_alive, 90, "10 workers")
    for symbol in SYMBOLS:  # a worker answers once it has loaded its state

        def loaded(symbol: str = symbol) -> bool:
            return control(endpoint, Command.STATUS, symbol)[0] == 200

        wait_for(loaded, 60, f"{symbol}'s worker")
        status, body = control(endpoint, Command.ENABLE, symbol)
        if status != 200:
            raise RuntimeError(f"enable {symbol}: {status} {body}")

    def all_quoting() -> bool:
        sides = {(o["symbol"], o["side"]) for o in venue.our_orders("OPEN")}
        return len(sides) == 2 * len(SYMBOLS)

    wait_for(all_quoting, 60, "both sides quoted on every symbol")


def states(endpoint: str, symbols: Sequence[str] = SYMBOLS) -> dict[str, str]:
    """Each symbol's state and active triggers, as its worker reports them."""
    found = {}
    for symbol in symbols:
        status, body = control(endpoint, Command.STATUS, symbol)
        triggers = ",".join(body.get("triggers", []))
        found[symbol] = f"{body.get('state', status)}{f' ({triggers})' if triggers else ''}"
    return found


def decided(database_url: str) -> dict[str, int]:
    """When each PENDING row's transaction began (now(), wall ns): the worker's decision."""
    url = database_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT client_order_id::text, created_at FROM mm_orders").fetchall()
    return {cid: round(created.timestamp() * 1e6) * 1000 for cid, created in rows}


class TickProbe(threading.Thread):
    """Notes when each book delta reaches a plain consumer of our own: the Kafka leg's floor."""

    def __init__(self, bootstrap: str, registry: str) -> None:
        super().__init__(name="tick-probe", daemon=True)
        self.codec = AvroCodec(registry)
        self.arrivals: dict[tuple[str, int], int] = {}  # (symbol, sequence) -> wall ns
        self.consumer = Consumer(
            consumer_config({"bootstrap.servers": bootstrap}, f"bench-probe-{uuid.uuid4().hex[:8]}")
        )
        topic = topics.ORDERBOOK_DELTA
        partitions = self.consumer.list_topics(topic, timeout=10).topics[topic].partitions
        self.consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in partitions])
        self.running = True

    def run(self) -> None:
        while self.running:
            # poll, not consume(n, timeout): that waits for n messages or the whole timeout.
            message = self.consumer.poll(0.05)
            if message is not None and message.error() is None:
                now = time.time_ns()
                delta = self.codec.decode(topics.ORDERBOOK_DELTA, message.value())
                self.arrivals[(delta["symbol"], int(delta["sequence"]))] = now

    def stop(self) -> None:
        self.running = False
        if self.is_alive():
            self.join(5)
        self.consumer.close()
        self.codec.close()

    def latencies(self, moves: Sequence[Move]) -> list[float]:
        """Per move, ms until its first book delta (re-centre, then the trade's) arrived."""
        found = []
        for symbol, t0, sequence in moves:
            seen = [self.arrivals.get((symbol, s)) for s in (sequence - 1, sequence)]
            stamps = [ns for ns in seen if ns is not None]
            if stamps:
                found.append((min(stamps) - t0) / 1e6)
        return found


def slow_order_requests(prometheus_dir: str, over_s: float = 0.05) -> tuple[int, int]:
    """(requests slower than ``over_s``, all requests) from the workers' placement histogram."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=prometheus_dir)  # type: ignore[no-untyped-call]
    total = within = 0.0
    for metric in registry.collect():
        if metric.name != "mm_order_placement_latency_seconds":
            continue
        for sample in metric.samples:
            if sample.name.endswith("_count"):
                total += sample.value
            elif sample.name.endswith("_bucket") and float(sample.labels["le"]) == over_s:
                within += sample.value
    return int(total - within), int(total)
