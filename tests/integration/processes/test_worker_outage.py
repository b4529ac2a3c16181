"""A worker through a PostgreSQL outage, in process, on a PostgreSQL of the test's own (D25, D31).

A fill that arrives while PostgreSQL is stopped is neither lost nor
acknowledged: the worker holds it, stays up with its quotes pulled, and once
PostgreSQL answers it re-takes its lease under the same epoch, commits the
fill with its position and only then acknowledges it to the supervisor.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import zmq
from alembic import command
from sqlalchemy import Engine, select, text

from mmsvc.adapters.db.engine import make_engine
from mmsvc.adapters.db.models import MMFill, MMPosition
from mmsvc.adapters.kafka import topics
from mmsvc.adapters.kafka.events import now_ms
from mmsvc.adapters.zmq import protocol
from mmsvc.devstack import services
from mmsvc.processes.worker.main import Worker
from tests.fixtures.db import alembic_config
from tests.fixtures.postgres_server import PostgresServer
from tests.fixtures.waiting import wait_for
from tests.fixtures.worker import fill_record, in_process_worker, instrument_record

pytestmark = pytest.mark.integration


STATEMENT_TIMEOUT = "1s"


@pytest.fixture
def database(postgres_server: PostgresServer) -> Iterator[tuple[str, Engine]]:
    """The private PostgreSQL's database, migrated, and an engine on it for the test."""
    url = services.ensure_database(postgres_server.admin_url, "mmsvc_worker_outage")
    command.upgrade(alembic_config(url), "head")
    engine = make_engine(url, pool_size=0, statement_timeout_s=60)
    yield url, engine
    engine.dispose()


@pytest.fixture
def worker(
    database: tuple[str, Engine], registry_url: str, redis_url: str, tmp_path: Path
) -> Iterator[Worker]:
    """An ACTIVE worker on the private PostgreSQL, its data and control sockets in process."""
    url, engine = database
    with in_process_worker(
        database_url=url,
        db_engine=engine,
        registry_url=registry_url,
        redis_url=redis_url,
        run_dir=tmp_path,
        prefix="O",
        settings={"POSTGRES_STATEMENT_TIMEOUT": STATEMENT_TIMEOUT},
    ) as w:
        yield w


@pytest.fixture
def sockets(worker: Worker) -> Iterator[tuple[zmq.Socket[bytes], zmq.Socket[bytes]]]:
    """(push to the worker's data socket, router that receives its control messages)."""
    name = uuid.uuid4().hex
    push, router = worker.ctx.socket(zmq.PUSH), worker.ctx.socket(zmq.ROUTER)
    push.bind(f"inproc://data-{name}")
    router.bind(f"inproc://control-{name}")
    worker.data = worker.ctx.socket(zmq.PULL)
    worker.data.connect(f"inproc://data-{name}")
    worker.control = worker.ctx.socket(zmq.DEALER)
    worker.control.connect(f"inproc://control-{name}")
    yield push, router
    for sock in (push, router, worker.data, worker.control):
        sock.close(linger=0)


def push_record(
    push: zmq.Socket[bytes], worker: Worker, topic: str, record: dict[str, Any], offset: int
) -> None:
    value = worker.codec.encode(topic, record)
    push.send_multipart(protocol.pack_data(topic.encode(), value, 0, offset, now_ms(), True))


def drained(worker: Worker) -> bool:
    """What the loop does when its data socket is readable."""
    worker._drain_data()
    return True


def acks(router: zmq.Socket[bytes]) -> list[tuple[str, int, int]]:
    """Every delivery the worker acknowledged so far."""
    seen: list[tuple[str, int, int]] = []
    while router.poll(50):
        _, raw = protocol.routed(router.recv_multipart())
        message = protocol.parse_from_worker(raw)
        if isinstance(message, protocol.Ack):
            seen.extend(message.deliveries)
    return seen


def test_a_fill_during_a_postgres_outage_is_held_unacknowledged_then_committed_and_acked(
    worker: Worker,
    sockets: tuple[zmq.Socket[bytes], zmq.Socket[bytes]],
    postgres_server: PostgresServer,
) -> None:
    push, router = sockets
    symbol = worker.symbol
    push_record(push, worker, topics.INSTRUMENT_CREATED, instrument_record(symbol), offset=1)
    wait_for(lambda: drained(worker) and worker.trader.inventory is not None, 5, "instrument")
    assert (topics.INSTRUMENT_CREATED, 0, 1) in acks(router)
    epoch = worker.keeper.epoch

    postgres_server.stop()
    record = fill_record(symbol)
    push_record(push, worker, topics.ENGINE_EVENTS, record, offset=2)
    wait_for(lambda: drained(worker) and worker.outage.active, 5, "the outage seen")
    assert [f.offset for f in worker.deferred] == [2]
    assert acks(router) == []  # never acknowledged while it is not committed (D31)

    postgres_server.start()
    wait_for(lambda: worker.outage.retry(worker._recover), 30, "recovered", poll_s=0.2)
    assert acks(router) == [(topics.ENGINE_EVENTS, 0, 2)]
    assert worker.keeper.epoch == epoch  # the same epoch, re-taken (D26)
    with worker.store._sessions() as session:
        fills = session.scalars(select(MMFill).where(MMFill.symbol == symbol)).all()
        position = session.get(MMPosition, symbol)
    assert [f.event_id for f in fills] == [record["event_id"]]
    assert position is not None
    assert position.quantity == Decimal("0.01")


def test_a_fill_write_blocked_by_a_lock_times_out_into_an_outage_then_commits(
    worker: Worker,
    sockets: tuple[zmq.Socket[bytes], zmq.Socket[bytes]],
    database: tuple[str, Engine],
) -> None:
    """D25: a PostgreSQL that does not answer a write (here: a lock another session holds)
    costs the worker the statement timeout, then the outage's hold, never a hung loop."""
    push, router = sockets
    symbol = worker.symbol
    push_record(push, worker, topics.INSTRUMENT_CREATED, instrument_record(symbol), offset=1)
    wait_for(lambda: drained(worker) and worker.trader.inventory is not None, 5, "instrument")
    assert (topics.INSTRUMENT_CREATED, 0, 1) in acks(router)
    record = fill_record(symbol)

    with database[1].connect() as other, other.begin():
        other.execute(text("LOCK TABLE mm_fills IN ACCESS EXCLUSIVE MODE"))
        push_record(push, worker, topics.ENGINE_EVENTS, record, offset=2)
        wait_for(lambda: drained(worker) and worker.outage.active, 15, "the write given up")
        assert [f.offset for f in worker.deferred] == [2]
        assert acks(router) == []  # never acknowledged while it is not committed (D31)

    wait_for(lambda: worker.outage.retry(worker._recover), 30, "recovered", poll_s=0.2)
    assert acks(router) == [(topics.ENGINE_EVENTS, 0, 2)]
    with worker.store._sessions() as session:
        fills = session.scalars(select(MMFill).where(MMFill.symbol == symbol)).all()
    assert [f.event_id for f in fills] == [record["event_id"]]
