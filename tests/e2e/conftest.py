"""The whole service as processes: supervisor (with its workers) and outbox relay.

Against a real broker and exchange simulator of each test module's own, the
session's registry, and a database and a Redis prefix of each test's own, so
tests never see each other's symbols, states or events.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any, Protocol, cast
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy.orm import Session, sessionmaker

from mmsvc.adapters.db.configs import ConfigRepository
from mmsvc.adapters.db.engine import make_engine, make_session_factory
from mmsvc.adapters.db.records import ConfigFields, StateRecord
from mmsvc.adapters.db.states import StateRepository
from mmsvc.adapters.kafka import topics
from mmsvc.adapters.zmq.control_client import ControlClient, SupervisorUnavailableError
from mmsvc.devstack import services, stack
from mmsvc.domain.state import Command
from tests.fixtures.exchange import Exchange, own_broker_and_exchange
from tests.fixtures.stack import SESSION_TAG
from tests.fixtures.waiting import WaitTimeoutError, wait_for


@dataclass
class Service:
    """A running mmsvc and handles to look at it from outside."""

    env: dict[str, str]
    sessions: sessionmaker[Session]
    exchange: Exchange
    run_dir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _control: ControlClient | None = None

    def start(self, name: str = "supervisor") -> None:
        module = {
            "supervisor": "mmsvc.processes.supervisor.main",
            "outbox": "mmsvc.processes.outbox",
            "metrics": "mmsvc.processes.metrics",
            "admin": "mmsvc.processes.admin",  # gunicorn on HTTP_PORT (set it: 8080 is shared)
        }
        log = (self.run_dir / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", module[name]], env=self.env, stdout=log, stderr=subprocess.STDOUT
        )

    def stop(self, name: str = "supervisor", timeout: float = 30) -> int:
        """SIGTERM ``name`` and wait for it; SIGKILL it (and raise) if it outlives ``timeout``."""
        proc = self.procs.pop(name)
        proc.terminate()
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise

    def command(
        self, cmd: str, symbol: str | None = None, timeout_s: float = 15, **args: Any
    ) -> tuple[int, dict[str, Any]]:
        """One request on the control channel, through the admin process's own client."""
        if self._control is None:
            self._control = ControlClient(self.env["MMSVC_CONTROL_ENDPOINT"])
        return self._control.request(
            Command(cmd), actor="e2e-test", symbol=symbol, args=args, timeout_s=timeout_s
        )

    @property
    def account(self) -> str:
        return self.env["SYSTEM_ACCOUNT_ID"]

    def state(self, symbol: str) -> StateRecord | None:
        with self.sessions() as session:
            return StateRepository(session).get(symbol)

    def state_name(self, symbol: str) -> str | None:
        """The symbol's state in PostgreSQL (ACTIVE, PAUSED or HALTED); None without a row."""
        record = self.state(symbol)
        return None if record is None else record.state.value

    def open_orders(self, symbol: str | None = None) -> list[dict[str, Any]]:
        params = {
            "account_id": self.account,
            "status": "OPEN",
            **({"symbol": symbol} if symbol else {}),
        }
        response = requests.get(
            f"{self.exchange.order_service_url}/v1/orders", params=params, timeout=5
        )
        response.raise_for_status()
        return list(response.json()["orders"])

    def quotes(self, symbol: str, levels: int = 1) -> list[dict[str, Any]]:
        """The symbol's open orders when exactly ``levels`` bids and asks rest, else [].

        A worker requotes by cancel and place, so one listing can catch it half-way
        (a side missing, or old and new orders both resting): poll this, never count once.
        """
        orders = self.open_orders(symbol)
        sides = Counter(order["side"] for order in orders)
        return orders if sides == {"BUY": levels, "SELL": levels} else []

    def venue_position(self, symbol: str) -> Decimal:
        """Our net base quantity filled at the venue: the position, once the service saw it all."""
        response = self.exchange.admin(
            "GET", f"/v1/orders?account_id={self.account}&symbol={symbol}"
        )
        response.raise_for_status()
        return sum(
            (
                Decimal(o["filled_quantity"]) * (1 if o["side"] == "BUY" else -1)
                for o in response.json()["orders"]
            ),
            Decimal(0),
        )

    def wait_ready(self, symbols: list[str], *, instrument: bool = True) -> None:
        """Every symbol's worker alive and answering; with ``instrument``, also knowing its
        instrument as TRADING, without which an enable is refused 409: the Metadata answer,
        and no halt of an earlier test that a new group's replay (D15) delivered before its
        resume, which comes on another topic (D31: only a newer resume clears a halt).

        With ``instrument``, also that the supervisor has read the replayed topics (engine
        events, instrument lifecycle) up to their end: a new group replays earlier tests'
        halts and resumes, on two topics read in no set order, so TRADING can show before
        an old halt arrives (fresh8's enable 409). Market data is not waited for: it starts
        near the end (D15), and after a restart in the full suite the lag trigger, which
        waits for every topic, stayed unarmed for 60 s (fresh9). PING's
        lag_trigger_waiting_for says on what, and is shown when this wait times out."""

        pings: list[Any] = []

        def ready() -> bool:
            try:
                status, body = self.command(Command.PING)
            except SupervisorUnavailableError:
                return False  # still starting
            waiting = body.get("lag_trigger_waiting_for") or []
            pings.append(waiting)
            workers = body.get("workers", {})
            alive = status == 200 and all(workers.get(s, {}).get("alive") for s in symbols)
            return alive and not (instrument and _replaying(waiting))

        began = time.monotonic()
        try:
            wait_for(ready, 60, f"workers of {symbols}")
        except WaitTimeoutError as exc:
            raise WaitTimeoutError(f"{exc}; the lag trigger waits for {pings[-1:]}") from exc
        _say_if_slow(began, f"workers of {symbols} alive")
        for symbol in symbols:  # the worker answers once it loaded its state
            began, seen = time.monotonic(), list[Any]()  # one list per symbol: two in a row
            answers = partial(self._answers_status, symbol, instrument, seen)
            wait_for(answers, 30, f"{symbol} status")
            _say_if_slow(began, f"{symbol} answering (last answers: {seen[-2:]})")

    def _answers_status(self, symbol: str, instrument: bool, seen: list[Any]) -> bool:
        """The symbol's worker answers; with ``instrument``, TRADING twice in a row: the
        worker answers a command before it reads the data that came in the same turn of
        its loop, so only an answer asked for after a first one has read what was replayed
        before that first one."""
        status, body = self.command(Command.STATUS, symbol)
        answer = (status, body.get("state"), body.get("instrument_status"))
        seen.append(answer)
        if status != 200:
            return False
        if not instrument:
            return True
        trading = [a[0] == 200 and a[2] == "TRADING" for a in seen[-2:]]
        return len(trading) == 2 and all(trading)


@pytest.fixture(scope="module")
def module_stack(
    run_dir: Path, registry_url: str, request: pytest.FixtureRequest
) -> Iterator[tuple[str, Exchange]]:
    """A broker and simulator per test module, in place of the session's.

    One broker for the whole e2e suite carried every earlier test's traffic: Tansu
    scans a partition's stored batches on each fetch, and every service's new group
    replays engine.event.v1 from the start (D15), so the suite's last modules ran on a
    broker several times busier than its first (fresh23: market data stalled ~10 s,
    a global KAFKA_LAG kill). Per module, each starts from an empty broker.
    """
    home = run_dir / f"e2e-{request.module.__name__.rsplit('.', 1)[-1]}"
    home.mkdir()
    with own_broker_and_exchange(home, registry_url) as both:
        yield both


@pytest.fixture(scope="module")
def kafka_bootstrap(module_stack: tuple[str, Exchange]) -> str:
    """The module's broker (overrides the session's)."""
    return module_stack[0]


@pytest.fixture(scope="module")
def exchange(module_stack: tuple[str, Exchange]) -> Exchange:
    """The module's simulator (overrides the session's)."""
    return module_stack[1]


def _replaying(waiting_for: list[str]) -> bool:
    """Any topic a new group replays from the earliest offset still behind (PING's
    lag_trigger_waiting_for names each partition as ``topic[n] ...``)."""
    return any(entry.split("[", 1)[0] not in topics.MARKET_DATA for entry in waiting_for)


def _say_if_slow(began: float, what: str, after_s: float = 10.0) -> None:
    """A readiness that took long is a warning in the test summary: a fresh run had one
    wait of about 30 s (a passing test, 41 s instead of 10) that left no other trace."""
    took = time.monotonic() - began
    if took > after_s:
        warnings.warn(f"slow readiness: {what} after {took:.1f}s", stacklevel=3)


def add_config(sessions: sessionmaker[Session], symbol: str, **fields: Any) -> None:
    """Create a config row as an operator would (volatility off: deterministic prices)."""
    values: dict[str, Any] = {"volatility_multiplier": False, "quote_interval_ms": Decimal(100)}
    for name, value in fields.items():
        plain = isinstance(value, bool) or name == "num_levels"
        values[name] = value if plain else Decimal(str(value))
    with sessions.begin() as session:
        ConfigRepository(session).create(symbol, "e2e-test", cast(ConfigFields, values))


def _same_database(pool_url: str, database_url: str) -> str:
    """The pooler's URL for `database_url`'s database (it pools every database: D27)."""
    return urlsplit(pool_url)._replace(path=urlsplit(database_url).path).geturl()


class ServiceFactory(Protocol):
    """Makes a Service on a fresh database; ``overrides`` replace its environment's values.

    ``host_of``: a second "host" of that service instead (D28): the same database,
    account, Redis prefix and KAFKA_GROUP_ID, its own run directory, sockets and ports.
    """

    def __call__(self, host_of: Service | None = None, **overrides: str) -> Service: ...


@pytest.fixture
def service_factory(
    tmp_path: Path,
    pg_admin_url: str,
    redis_url: str,
    kafka_bootstrap: str,
    registry_url: str,
    exchange: Exchange,
    pool_url: str,
    migrated_template: str,
) -> Iterator[ServiceFactory]:
    """Builds a Service on a fresh database; everything it started stops afterwards.

    The database is a copy of the session's migrated template (migrations
    themselves are tested in tests/integration/db/test_migrations.py).

    Workers reach it through the session's PgBouncer in transaction mode, as in
    production (D27, D32); everything else connects directly.
    """
    made: list[Service] = []
    name = f"mmsvc_e2e_{SESSION_TAG}_{len(os.listdir(tmp_path.parent))}"

    def make(host_of: Service | None = None, **overrides: str) -> Service:
        sockets = Path(f"/tmp/mmsvc-e2e-{uuid.uuid4().hex[:8]}")
        sockets.mkdir()
        if host_of is not None:
            return _another_host(host_of, sockets, overrides)
        database_url = services.ensure_database(
            pg_admin_url, name, recreate=True, template=migrated_template
        )
        env = {
            **os.environ,
            "POSTGRES_URL": database_url,
            "POSTGRES_POOL_URL": _same_database(pool_url, database_url),
            "REDIS_URL": redis_url,
            "REDIS_KEY_PREFIX": f"mmsvc-e2e-{uuid.uuid4().hex[:8]}:",
            "KAFKA_BROKERS": kafka_bootstrap,
            "SCHEMA_REGISTRY_URL": registry_url,
            "ORDER_SERVICE_URL": exchange.order_service_url,
            "METADATA_SERVICE_GRPC_URL": exchange.metadata_grpc_url,
            # An account per service: a new consumer group replays engine.event.v1
            # from the start (D15), and another test's fills must not become ours.
            "SYSTEM_ACCOUNT_ID": str(uuid.uuid4()),
            "DISABLE_AUTH": "true",
            "KAFKA_GROUP_ID": f"mmsvc-e2e-{uuid.uuid4().hex[:8]}",
            # Tansu holds a new group's first join for half the session timeout: 1 s
            # instead of 3 s for every service a test starts (production keeps 6 s).
            "KAFKA_SESSION_TIMEOUT": "2s",
            "MMSVC_RUN_DIR": str(tmp_path),
            "MMSVC_WORKER_SOCKET_DIR": str(sockets),
            "MMSVC_CONTROL_ENDPOINT": f"ipc://{sockets}/control.sock",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
            "KILL_SWITCH_RESPONSE_TIMEOUT_MS": "500",
            "METRICS_PORT": str(stack.free_port()),
            "LOG_LEVEL": "INFO",
            **overrides,
        }
        engine = make_engine(database_url)
        service = Service(env, make_session_factory(engine), exchange, tmp_path)
        made.append(service)
        return service

    def _another_host(first: Service, sockets: Path, overrides: dict[str, str]) -> Service:
        run_dir = first.run_dir / f"host-{len(made)}"
        run_dir.mkdir()
        env = {
            **first.env,
            "MMSVC_RUN_DIR": str(run_dir),
            "MMSVC_WORKER_SOCKET_DIR": str(sockets),
            "MMSVC_CONTROL_ENDPOINT": f"ipc://{sockets}/control.sock",
            "PROMETHEUS_MULTIPROC_DIR": str(run_dir / "prometheus"),
            "METRICS_PORT": str(stack.free_port()),
            **overrides,
        }
        engine = make_engine(first.env["POSTGRES_URL"])
        service = Service(env, make_session_factory(engine), exchange, run_dir)
        made.append(service)
        return service

    yield make
    for service in made:
        for proc_name in list(service.procs):
            with contextlib.suppress(subprocess.TimeoutExpired):  # stop() killed it then
                service.stop(proc_name)
        service.sessions.kw["bind"].dispose()
        if service._control is not None:
            service._control.close()
    exchange.clear_faults()
    services.drop_database(pg_admin_url, name)


# The demo symbols the end-to-end tests quote.
CALM_SYMBOLS = ("BTCUSDT", "ETHUSDT")


@pytest.fixture
def calm_markets(exchange: Exchange) -> Iterator[None]:
    """No random walk and no jumps: no requote happens by chance, to meet an outage, or to
    leave no bid resting when a test's deliberate move arrives (then nothing fills: a fresh
    run timed out waiting for a position after a move that way)."""
    calm = {"volatility_bps": 0.0, "jump_probability": 0.0}
    before = {s: exchange.market(s)["params"] for s in CALM_SYMBOLS}
    for symbol in CALM_SYMBOLS:
        exchange.admin("PATCH", f"/v1/markets/{symbol}", calm).raise_for_status()
    try:
        yield
    finally:
        for symbol in CALM_SYMBOLS:
            restore = {k: before[symbol][k] for k in calm}
            exchange.admin("PATCH", f"/v1/markets/{symbol}", restore).raise_for_status()
