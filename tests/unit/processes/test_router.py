"""The router: market data is shed when a worker's queue is full, money never is (D1, D14)."""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmsvc.adapters.kafka.codec import engine_event_account_id
from mmsvc.adapters.zmq.protocol import unpack_data
from mmsvc.processes.supervisor.delivery import DeliveryId
from mmsvc.processes.supervisor.lag import LagTracker
from mmsvc.processes.supervisor.router import WARMUP_MAX, Router, WorkerLink
from tests.fixtures.waiting import wait_for

OURS = "mm-account"
FILLS, TRADES, HALT = "engine.event.v1", "md.trades.v1", "md.instrument.halt.v1"


Context = zmq.Context[zmq.Socket[bytes]]


@pytest.fixture
def ctx() -> Iterator[Context]:
    context: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    yield context
    context.destroy(linger=0)


def pair(
    ctx: zmq.Context[zmq.Socket[bytes]], name: str, hwm: int
) -> tuple[zmq.Socket[bytes], zmq.Socket[bytes]]:
    push, pull = ctx.socket(zmq.PUSH), ctx.socket(zmq.PULL)
    for sock in (push, pull):
        sock.setsockopt(zmq.SNDHWM, hwm)
        sock.setsockopt(zmq.RCVHWM, hwm)
        sock.setsockopt(zmq.LINGER, 0)
    push.bind(f"inproc://{name}")
    pull.connect(f"inproc://{name}")
    return push, pull


def drain(pull: zmq.Socket[bytes]) -> list[tuple[str, int]]:
    got = []
    while pull.poll(10):
        frame = unpack_data(pull.recv_multipart())
        got.append((frame.topic, frame.offset))
    return got


def make_router(
    ctx: zmq.Context[zmq.Socket[bytes]], hwm: int = 1000
) -> tuple[Router, zmq.Socket[bytes]]:
    router = Router(account_id=OURS, peek_account=lambda value: value.decode() or None)
    push, pull = pair(ctx, f"w{id(router)}", hwm)
    router.attach(WorkerLink("BTCUSDT", push))
    return router, pull


def test_routes_by_key_and_forwards_the_value_untouched(ctx: Context) -> None:
    router, pull = make_router(ctx)
    router.route(TRADES, b"BTCUSDT", b"raw-avro", 2, 41, 1_700)
    frame = unpack_data(pull.recv_multipart())
    assert (frame.topic, frame.value, frame.partition, frame.offset, frame.ts_ms) == (
        TRADES,
        b"raw-avro",
        2,
        41,
        1_700,
    )
    assert frame.must_ack is False


class Message:
    """What confluent-kafka's Message offers the router."""

    def __init__(self, topic: str, key: bytes, value: bytes, partition: int, offset: int) -> None:
        self._t, self._k, self._v, self._p, self._o = topic, key, value, partition, offset

    def topic(self) -> str:
        return self._t

    def key(self) -> bytes:
        return self._k

    def value(self) -> bytes:
        return self._v

    def partition(self) -> int:
        return self._p

    def offset(self) -> int:
        return self._o

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_000)


def test_other_accounts_engine_events_are_dropped_and_counted(ctx: Context) -> None:
    router, pull = make_router(ctx)
    lag = LagTracker(threshold_s=10)
    router.route_batch([Message(FILLS, b"BTCUSDT", b"someone-else", 0, 0)], lag, now=1.0)
    assert drain(pull) == []
    assert router.stats["dropped_other_account"] == 1
    assert router.tracker.committable() == {(FILLS, 0): 1}  # its offset still advances


def test_a_batch_feeds_the_lag_tracker_its_oldest_message_per_partition(ctx: Context) -> None:
    router, _ = make_router(ctx)
    lag = LagTracker(threshold_s=10)
    lag.watermark((TRADES, 0), high=0, now=0.0)  # caught up at 0 s: armed for this partition
    batch = [Message(TRADES, b"BTCUSDT", b"t", 0, offset) for offset in range(3)]
    router.route_batch(batch, lag, now=31.0)
    assert lag.by_topic(now=31.0) == {TRADES: 30.0}  # ts 1 s, consumed at 31 s


def test_messages_for_symbols_without_a_worker_are_dropped_and_counted(ctx: Context) -> None:
    router, _ = make_router(ctx)
    router.route(TRADES, b"DOGEUSDT", b"x", 0, 0, 0)
    router.route(FILLS, b"DOGEUSDT", OURS.encode(), 0, 1, 0)
    assert router.stats["dropped_no_worker"] == 2


def test_full_queue_sheds_market_data_but_buffers_fills_until_room(ctx: Context) -> None:
    router, pull = make_router(ctx, hwm=2)
    for offset in range(20):
        router.route(TRADES, b"BTCUSDT", b"t", 0, offset, 0)
    router.route(FILLS, b"BTCUSDT", OURS.encode(), 0, 100, 0)
    router.route(HALT, b"BTCUSDT", b"h", 0, 7, 0)
    assert router.stats["shed_queue_full"] > 0
    assert router.buffered() == 2
    received = drain(pull)
    router.flush_all()
    received += drain(pull)
    assert (FILLS, 100) in received
    assert (HALT, 7) in received
    assert router.buffered() == 0


def test_commit_waits_for_the_workers_ack_and_a_restarted_worker_gets_it_again(
    ctx: Context,
) -> None:
    router, pull = make_router(ctx)
    router.route(FILLS, b"BTCUSDT", OURS.encode(), 3, 10, 0)
    assert drain(pull) == [(FILLS, 10)]
    assert router.tracker.committable() == {(FILLS, 3): 10}
    router.links[b"BTCUSDT"].resend_unacked()  # the worker died before acking
    router.flush_all()
    assert drain(pull) == [(FILLS, 10)]
    router.acknowledge("BTCUSDT", [DeliveryId(FILLS, 3, 10)])
    assert router.tracker.committable() == {(FILLS, 3): 11}
    assert router.links[b"BTCUSDT"].unacked == {}


SNAP, DELTA = "md.orderbook.snap.v1", "md.orderbook.delta.v1"


def test_a_worker_before_its_hello_gets_the_book_data_held_for_it_at_hello(ctx: Context) -> None:
    """A taken-over symbol's replayed snapshot and deltas reach its new worker (D15, issue 15)."""
    router, pull = make_router(ctx)
    router.restarting("BTCUSDT")
    router.route(SNAP, b"BTCUSDT", b"s", 1, 5, 0)
    router.route(DELTA, b"BTCUSDT", b"d", 1, 9, 0)
    router.route(FILLS, b"BTCUSDT", OURS.encode(), 1, 20, 0)
    assert drain(pull) == [(FILLS, 20)]  # must-deliver messages never wait for this
    router.greeted("BTCUSDT")
    assert drain(pull) == [(FILLS, 20), (SNAP, 5), (DELTA, 9)]  # again, unacknowledged
    router.route(DELTA, b"BTCUSDT", b"d", 1, 10, 0)
    assert drain(pull) == [(DELTA, 10)]
    assert router.stats["routed"] == 4


def test_held_book_data_keeps_the_newest_messages(ctx: Context) -> None:
    router, pull = make_router(ctx, hwm=WARMUP_MAX * 2)
    router.restarting("BTCUSDT")
    for offset in range(WARMUP_MAX + 3):
        router.route(DELTA, b"BTCUSDT", b"d", 0, offset, 0)
    assert router.stats["shed_held"] == 3
    router.greeted("BTCUSDT")
    got = drain(pull)
    assert len(got) == WARMUP_MAX
    assert got[0] == (DELTA, 3)


def test_held_book_data_waits_for_a_data_connection_slower_than_the_hello(ctx: Context) -> None:
    """HELLO and the data connection are both asynchronous: a queue with no peer yet
    refuses, and the held messages keep their place before anything newer."""
    router = Router(account_id=OURS, peek_account=lambda value: value.decode() or None)
    push = ctx.socket(zmq.PUSH)
    push.setsockopt(zmq.LINGER, 0)
    push.bind("inproc://slow-worker")
    router.attach(WorkerLink("BTCUSDT", push, warming=True))
    router.route(SNAP, b"BTCUSDT", b"s", 1, 5, 0)
    router.greeted("BTCUSDT")  # no peer connected: nothing can go yet
    router.route(DELTA, b"BTCUSDT", b"d", 1, 9, 0)
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.LINGER, 0)
    pull.connect("inproc://slow-worker")
    link = router.links[b"BTCUSDT"]

    def flushed() -> bool:
        router.flush_all()  # the housekeeping tick (the connection lands asynchronously)
        return not link.warmup

    wait_for(flushed, 5, "the held messages sent once the worker is connected")
    router.route(DELTA, b"BTCUSDT", b"d", 1, 10, 0)
    assert drain(pull) == [(SNAP, 5), (DELTA, 9), (DELTA, 10)]
    assert router.stats["routed"] == 3
    assert router.stats["shed_queue_full"] == 0


def test_an_engine_event_that_cannot_be_read_is_counted_as_undecodable(ctx: Context) -> None:
    router, pull = make_router(ctx)
    router.route(FILLS, b"BTCUSDT", b"", 0, 0, 0)
    assert drain(pull) == []
    assert router.stats["dropped_undecodable"] == 1
    assert router.stats["dropped_other_account"] == 0


_TOPICS = [FILLS, TRADES, HALT, "md.orderbook.snap.v1", "md.instrument.created.v1", "other"]


_FUZZ_ADDRESSES = itertools.count()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    topic=st.sampled_from(_TOPICS),
    key=st.none() | st.binary(max_size=20) | st.just(b"BTCUSDT"),
    value=st.none() | st.binary(max_size=64),
    partition=st.integers(0, 2**31 - 1),
    offset=st.integers(-2, 2**63 - 1),
    ts_ms=st.integers(-1, 2**62),
)
def test_no_key_or_value_makes_the_router_raise(ctx, topic, key, value, partition, offset, ts_ms):
    """D14/D24: the router never decodes market data and never crashes on what it consumed."""
    router = Router(account_id=OURS, peek_account=engine_event_account_id)
    # A fresh address per example: id() of a collected router is reused at once.
    push, pull = pair(ctx, f"fuzz{next(_FUZZ_ADDRESSES)}", 10)
    router.attach(WorkerLink("BTCUSDT", push))
    router.route(topic, key, value, partition, offset, ts_ms)
    assert sum(router.stats.values()) == 1  # every message is routed or counted, once
    pull.close()
    push.close()
