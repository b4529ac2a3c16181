"""Dependencies that go away and come back: the service holds, then resumes (D25, D26, D29).

Each fault is provoked from outside: a PostgreSQL of the test's own stopped and
started, the simulator's Order Service answering 503, a broker of the test's
own paused with SIGSTOP. No process of ours exits, quotes are pulled while in
doubt, the symbols carry on in the state PostgreSQL records, and each test ends
with the venue's open orders equal to what the service's database lists.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import text

from mmsvc.adapters.db import leases
from mmsvc.adapters.db.engine import make_engine, make_session_factory
from mmsvc.devstack import services, stack
from mmsvc.domain.state import Command
from tests.e2e.conftest import Service, ServiceFactory, add_config
from tests.e2e.test_order_races import assert_settled
from tests.fixtures.db import alembic_config
from tests.fixtures.exchange import Exchange, own_broker_and_exchange
from tests.fixtures.postgres_server import PostgresServer
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
# D25 asks for quoting again within 15 s of PostgreSQL answering; the margin is
# for two cores shared by several engineers' stacks (never a timing assertion).
RESUME_S = 30


def start_quoting(service: Service, symbols: list[str]) -> dict[str, int]:
    """Supervisor, relay and every symbol ACTIVE and quoting; the workers' pids."""
    service.start("supervisor")
    service.start("outbox")
    service.wait_ready(symbols)
    for symbol in symbols:
        status, body = service.command(Command.ENABLE, symbol)
        assert status == 200, body
    for symbol in symbols:
        wait_for(partial(service.quotes, symbol), 30, f"{symbol} quoting")
    return worker_pids(service)


def worker_pids(service: Service) -> dict[str, int]:
    workers = service.command(Command.PING)[1]["workers"]
    return {symbol: int(w["pid"]) for symbol, w in workers.items() if w["alive"]}


def no_quotes(service: Service, symbols: list[str]) -> bool:
    return all(service.open_orders(symbol) == [] for symbol in symbols)


def assert_alive(service: Service, pids: dict[str, int]) -> None:
    """Every process we started still runs, and no worker was restarted."""
    for name, proc in service.procs.items():
        assert proc.poll() is None, f"{name} exited with {proc.returncode}"
    assert worker_pids(service) == pids


def lease_epochs(service: Service) -> dict[str, int]:
    with service.sessions() as session:
        rows = session.execute(text("SELECT symbol, epoch FROM mm_leases")).all()
    return {str(row.symbol): int(row.epoch) for row in rows}


@pytest.fixture
def private_pg_service(
    postgres_server: PostgresServer,  # first in, last out: the service stops first
    service_factory: ServiceFactory,
) -> Service:
    """A service whose every process, workers included, uses the private PostgreSQL.

    The workers bypass the session's PgBouncer (POSTGRES_POOL_URL is the server
    itself), so a restart of this server is the only outage they see.
    """
    url = services.ensure_database(postgres_server.admin_url, "mmsvc_outage", recreate=True)
    command.upgrade(alembic_config(url), "head")
    service = service_factory(POSTGRES_URL=url, POSTGRES_POOL_URL=url)
    service.sessions = make_session_factory(make_engine(url, pool_size=0))
    return service


def test_postgres_restart_pulls_quotes_then_resumes_and_a_kill_sent_meanwhile_lands(
    private_pg_service: Service,
    postgres_server: PostgresServer,
) -> None:
    service = private_pg_service
    live, killed = SYMBOLS
    for symbol in SYMBOLS:
        add_config(service.sessions, symbol)
    pids = start_quoting(service, SYMBOLS)
    epochs = lease_epochs(service)

    postgres_server.stop()
    wait_for(lambda: no_quotes(service, SYMBOLS), 10, "quotes pulled while PostgreSQL is down")
    status, body = service.command(Command.KILL, killed)
    assert (status, body.get("state")) == (200, "HALTED"), body
    time.sleep(leases.LEASE_S + 1)  # deliberate: the lease expires on PostgreSQL's clock
    assert no_quotes(service, SYMBOLS)
    postgres_server.start()

    wait_for(lambda: service.state_name(killed) == "HALTED", RESUME_S, "the kill recorded")
    wait_for(lambda: service.quotes(live), RESUME_S, f"{live} quoting again by itself")
    assert service.state_name(live) == "ACTIVE"
    assert lease_epochs(service) == epochs  # nobody took them: re-taken as the same epoch (D26)
    assert_alive(service, pids)
    assert_settled(service, flat=True, symbol=killed)
    assert_settled(service, flat=False, symbol=live)


def logged(service: Service, text: str, *also: str) -> bool:
    """True once a line of the supervisor's log (its workers' too: they inherit it) holds
    ``text`` and every one of ``also``."""
    lines = (service.run_dir / "supervisor.log").read_text(errors="replace").splitlines()
    return any(text in line and all(a in line for a in also) for line in lines)


def restarts(service: Service, symbol: str) -> int:
    return int(service.command(Command.PING)[1]["workers"][symbol]["restarts"])


def test_service_started_while_postgres_is_down_waits_then_comes_up_paused(
    private_pg_service: Service,
    postgres_server: PostgresServer,
) -> None:
    """D25, D29: no crash loop at start; once PostgreSQL answers, the symbol comes up PAUSED."""
    service = private_pg_service
    symbol = SYMBOLS[0]
    add_config(service.sessions, symbol)
    postgres_server.stop()
    service.start("supervisor")
    service.start("outbox")
    wait_for(lambda: logged(service, "waiting for PostgreSQL"), 30, "the supervisor waiting")
    assert service.procs["supervisor"].poll() is None

    postgres_server.start()
    service.wait_ready([symbol])
    assert service.state_name(symbol) == "PAUSED"
    assert restarts(service, symbol) == 0
    for name, proc in service.procs.items():
        assert proc.poll() is None, f"{name} exited with {proc.returncode}"
    status, body = service.command(Command.ENABLE, symbol)
    assert status == 200, body
    wait_for(partial(service.quotes, symbol), 30, f"{symbol} quoting")
    assert_settled(service, flat=False, symbol=symbol)


def test_worker_started_while_postgres_is_down_waits_instead_of_crash_looping(
    private_pg_service: Service,
    postgres_server: PostgresServer,
) -> None:
    """A worker (re)started during an outage waits with backoff, quoting nothing, then takes
    its lease and comes up PAUSED (a process start: D29), without a second restart (D25)."""
    service = private_pg_service
    symbol = SYMBOLS[0]
    add_config(service.sessions, symbol)
    old = start_quoting(service, [symbol])[symbol]
    postgres_server.stop()
    wait_for(lambda: no_quotes(service, [symbol]), 10, "quotes pulled while PostgreSQL is down")
    os.kill(old, signal.SIGKILL)  # the pool restarts it (one restart, ours) into the outage

    def restarted() -> int | None:
        pid = worker_pids(service).get(symbol)
        return None if pid == old else pid

    new = wait_for(restarted, 30, "the worker restarted")
    waiting = (f'"pid": {new}', f'"symbol": "{symbol}"')
    wait_for(lambda: logged(service, "waiting for PostgreSQL", *waiting), 30, "the worker waiting")
    assert no_quotes(service, [symbol])

    postgres_server.start()
    wait_for(partial(service._answers_status, symbol, True, []), RESUME_S, f"{symbol} answers")
    assert service.state_name(symbol) == "PAUSED"
    assert worker_pids(service) == {symbol: new}
    assert restarts(service, symbol) == 1  # the one the test caused
    assert service.procs["supervisor"].poll() is None
    status, body = service.command(Command.ENABLE, symbol)
    assert status == 200, body
    wait_for(partial(service.quotes, symbol), 30, f"{symbol} quoting again")
    assert_settled(service, flat=False, symbol=symbol)


@pytest.mark.usefixtures("calm_markets")
def test_order_service_unavailable_pulls_quotes_and_resumes(
    service_factory: ServiceFactory, exchange: Exchange
) -> None:
    service = service_factory()
    for symbol in SYMBOLS:
        add_config(service.sessions, symbol)
    pids = start_quoting(service, SYMBOLS)
    before = {o["order_id"] for s in SYMBOLS for o in service.open_orders(s)}

    exchange.set_faults(unavailable=True)
    time.sleep(10.0)  # deliberate: the acceptance's ten seconds of 503
    exchange.clear_faults()

    def quoting_afresh(symbol: str) -> bool:
        """One bid and one ask resting, none of them from before the outage: pulled, requoted."""
        quotes = service.quotes(symbol)
        return bool(quotes) and not {o["order_id"] for o in quotes} & before

    for symbol in SYMBOLS:
        wait_for(partial(quoting_afresh, symbol), RESUME_S, f"{symbol} quoting afresh")
        assert service.state_name(symbol) == "ACTIVE"
    assert_alive(service, pids)
    for symbol in SYMBOLS:
        assert_settled(service, flat=False, symbol=symbol)


@pytest.fixture
def own_broker_exchange(
    tmp_path_factory: pytest.TempPathFactory, registry_url: str
) -> Iterator[tuple[str, Exchange, Path]]:
    """A broker and a simulator of this test's own: pausing it pauses nobody else."""
    run_dir = tmp_path_factory.mktemp("outage-broker")
    with own_broker_and_exchange(run_dir, registry_url, name="outage-exchange") as (bootstrap, sim):
        yield bootstrap, sim, run_dir


def test_broker_paused_past_the_lag_threshold_kills_and_nothing_crashes(
    own_broker_exchange: tuple[str, Exchange, Path],  # first in, last out: outlives the service
    service_factory: ServiceFactory,
) -> None:
    bootstrap, sim, run_dir = own_broker_exchange
    service = service_factory(
        KAFKA_BROKERS=bootstrap,
        ORDER_SERVICE_URL=sim.order_service_url,
        METADATA_SERVICE_GRPC_URL=sim.metadata_grpc_url,
        KILL_SWITCH_KAFKA_LAG_THRESHOLD="2s",
        # The lag kill comes before the client gives its session (and partitions) up.
        KAFKA_SESSION_TIMEOUT="6s",
    )
    service.exchange = sim
    symbol = SYMBOLS[0]
    add_config(service.sessions, symbol)
    pids = start_quoting(service, [symbol])
    wait_for(lambda: service.command(Command.PING)[1]["lag_trigger_armed"], 60, "armed")

    broker = stack.running_pids(run_dir)["broker"]
    os.kill(broker, signal.SIGSTOP)
    try:
        wait_for(lambda: service.state_name(symbol) == "HALTED", 30, "HALTED while paused")
    finally:
        os.kill(broker, signal.SIGCONT)
    state = service.state(symbol)
    assert state is not None
    assert state.trigger is not None
    assert state.trigger.value == "KAFKA_LAG"
    wait_for(lambda: no_quotes(service, [symbol]), 30, "no open order after the kill")
    time.sleep(3.0)  # deliberate: the broker answers again; a crash would show meanwhile
    assert_alive(service, pids)
    assert_settled(service, flat=True, symbol=symbol)
