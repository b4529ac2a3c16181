"""Many clients through PgBouncer in transaction mode, few PostgreSQL connections (D27, D32).

200 worker-shaped clients (one engine each, one connection each) take their
lease, renew it and write orders fenced by their epoch, all at once, while
PostgreSQL sees no more server connections than the pool allows. The same
statements run over and over on connections the pooler swaps underneath: a
server-side prepared statement would not survive that (D32).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, delete, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from mmsvc.adapters.db import leases
from mmsvc.adapters.db.engine import make_worker_engine
from mmsvc.adapters.db.models import MMLease, MMOrder
from mmsvc.adapters.db.orders import OrderRepository
from tests.fixtures.pgbouncer import TEST_MAX_DB_CONNECTIONS
from tests.integration.db.conftest import new_order

pytestmark = pytest.mark.integration

CLIENTS = 200
ROUNDS = 3  # each round is two transactions of every client at once
# The pool's server connections, plus the test session's own direct ones.
BUDGET = TEST_MAX_DB_CONNECTIONS + 6


@pytest.fixture
def pool_symbols(db_engine: Engine) -> Iterator[list[str]]:
    names = [f"POOL{n}USDT" for n in range(CLIENTS)]
    yield names
    with Session(db_engine) as session, session.begin():
        session.execute(delete(MMOrder).where(MMOrder.symbol.in_(names)))
        session.execute(delete(MMLease).where(MMLease.symbol.in_(names)))


def backends(engine: Engine) -> int:
    """PostgreSQL's connections to the test database, this query's own excluded."""
    with engine.connect() as connection:
        return int(
            connection.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalar_one()
        )


class Client:
    """One worker-shaped client: its own engine of one connection, its own symbol."""

    def __init__(self, url: str, symbol: str) -> None:
        self.engine = make_worker_engine(url, application_name=f"mmsvc-{symbol}")
        self.symbol = symbol
        self.orders = 0

    def take(self) -> int:
        with Session(self.engine) as session, session.begin():
            return leases.take(session, self.symbol, f"pool-test/{self.symbol}", 60.0).epoch

    def round(self, epoch: int) -> None:
        with Session(self.engine) as session, session.begin():
            leases.renew(session, self.symbol, epoch, 60.0)
        with Session(self.engine) as session, session.begin():
            leases.fence(session, self.symbol, epoch)
            OrderRepository(session).insert_pending(new_order(self.symbol))
        self.orders += 1

    def release(self, epoch: int) -> None:
        with Session(self.engine) as session, session.begin():
            leases.release(session, self.symbol, epoch)


def test_200_clients_share_a_few_server_connections_through_pgbouncer(
    pool_url, db_engine, pool_symbols
):
    clients = [Client(pool_url, symbol) for symbol in pool_symbols]
    all_connected = threading.Barrier(CLIENTS + 1)
    errors: list[BaseException] = []

    def work(client: Client) -> None:
        try:
            epoch = client.take()
            # Every client now holds its one connection to the pooler.
            all_connected.wait(120)
            for _ in range(ROUNDS):
                client.round(epoch)
            client.release(epoch)
        except BaseException as exc:  # noqa: BLE001 - a client thread reports every failure to the test
            errors.append(exc)
            all_connected.abort()
        finally:
            client.engine.dispose()

    threads = [threading.Thread(target=work, args=(client,)) for client in clients]
    for thread in threads:
        thread.start()
    peak = 0
    try:
        all_connected.wait(120)
        while any(thread.is_alive() for thread in threads):
            peak = max(peak, backends(db_engine))
            threads[-1].join(0.02)  # a sampling interval, not a wait for a condition
    except threading.BrokenBarrierError:
        pass
    for thread in threads:
        thread.join(120)
    assert not errors, f"{len(errors)} clients failed, first: {errors[0]!r}"
    assert sum(client.orders for client in clients) == CLIENTS * ROUNDS
    assert 0 < peak <= BUDGET, f"PostgreSQL saw {peak} connections for {CLIENTS} clients"
    with Session(db_engine) as session:
        assert len(OrderRepository(session).list_open(pool_symbols[-1])) == ROUNDS


def test_a_statement_repeated_past_psycopgs_prepare_threshold_runs_through_the_pooler(pool_url):
    # psycopg prepares a query after 5 runs; the pooler then hands the next
    # transaction another server connection where it was never prepared.
    engines = [make_worker_engine(pool_url, application_name="mmsvc-prepare") for _ in range(12)]
    failures: list[BaseException] = []

    def repeat(engine: Engine) -> None:
        try:
            for n in range(20):
                with engine.begin() as connection:
                    connection.execute(
                        text("SELECT CAST(:n AS integer) + 1"), {"n": n}
                    ).scalar_one()
        except BaseException as exc:  # noqa: BLE001 - a thread reports every failure to the test
            failures.append(exc)

    threads = [threading.Thread(target=repeat, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for engine in engines:
        engine.dispose()
    assert not failures, repr(failures[0])


def test_the_statement_timeout_holds_through_the_pooler(pool_url: str) -> None:
    """D25: SET LOCAL per transaction reaches the server connection a transaction borrows
    (a startup option would not), and leaves no trace on the next transaction's."""
    engine = make_worker_engine(pool_url, application_name="mmsvc-timeout", statement_timeout_s=0.5)
    others = make_worker_engine(pool_url, application_name="mmsvc-other", statement_timeout_s=60)
    try:
        with engine.begin() as connection:
            assert connection.execute(text("SHOW statement_timeout")).scalar_one() == "500ms"
        with pytest.raises(OperationalError, match="statement timeout"), engine.begin() as conn:
            conn.execute(text("SELECT pg_sleep(5)"))
        assert usable(engine)
        with others.begin() as connection:  # whichever server connection it borrows
            assert connection.execute(text("SHOW statement_timeout")).scalar_one() == "1min"
    finally:
        engine.dispose()
        others.dispose()


def usable(engine: Engine) -> bool:
    """The engine is usable again after a canceled statement."""
    with engine.begin() as connection:
        return bool(connection.execute(text("SELECT 1")).scalar_one() == 1)
