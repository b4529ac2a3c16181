"""A worker's sockets: no frame on its control DEALER or data PULL crashes it (D24).

The worker is built without its adapters: real ZeroMQ sockets on inproc
endpoints, its real receive-and-dispatch loops (``_drain_control``,
``_drain_data``), and stubs where a decoded message would be applied.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmsvc.adapters.zmq import protocol
from mmsvc.domain.state import Command
from mmsvc.processes.worker.cadence import Keepalive
from mmsvc.processes.worker.main import Worker


class StubCommands:
    """Answers every command; fails on STATUS, as a handler with a bug would."""

    def __init__(self) -> None:
        self.handled: list[protocol.WorkerCommand] = []

    def handle(self, message: protocol.WorkerCommand) -> tuple[int, dict[str, Any]]:
        self.handled.append(message)
        if message.cmd is Command.STATUS:
            raise RuntimeError("a handler bug")
        return 200, {}


@pytest.fixture
def worker() -> Iterator[tuple[Worker, zmq.Socket[bytes], zmq.Socket[bytes]]]:
    """(worker, the supervisor's ROUTER, the supervisor's PUSH) over inproc."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    name = uuid.uuid4().hex[:8]
    router, push = ctx.socket(zmq.ROUTER), ctx.socket(zmq.PUSH)
    router.bind(f"inproc://ctl-{name}")
    push.bind(f"inproc://data-{name}")
    w = Worker.__new__(Worker)
    w.symbol = "BTCUSDT"
    w.supervisor_seen = 0.0
    w.keepalive = Keepalive()
    w.commands = StubCommands()  # type: ignore[assignment]
    w.control = ctx.socket(zmq.DEALER)
    w.control.setsockopt(zmq.IDENTITY, b"BTCUSDT")
    w.control.connect(f"inproc://ctl-{name}")
    w.data = ctx.socket(zmq.PULL)
    w.data.connect(f"inproc://data-{name}")
    applied: list[protocol.DataFrame] = []
    w._on_data = applied.append  # type: ignore[method-assign,assignment]
    w.applied = applied  # type: ignore[attr-defined]
    w.send(protocol.Hello(1))  # so the ROUTER knows the worker's identity
    assert router.poll(1000)
    router.recv_multipart()
    yield w, router, push
    ctx.destroy(linger=0)


frames = st.lists(
    st.one_of(
        st.binary(max_size=40),
        st.sampled_from(
            [
                b"",
                b"\xff",
                b"{}",
                b'{"t": "cmd"}',
                b'{"t": "cmd", "id": 1, "cmd": "kill"}',
                b'{"t": "cmd", "id": "1", "cmd": "nuke"}',
                b'{"t": "cmd", "id": "1", "cmd": "kill", "args": "all"}',
                b'{"t": "cmd", "id": "1", "cmd": "status"}',
                b'{"t": "hb"}',
                b"engine.event.v1",
                b"\x00" * 21,
            ]
        ),
    ),
    max_size=4,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(control=frames, data=frames)
def test_no_frame_on_the_control_or_data_socket_crashes_a_worker(
    worker: Any,
    control: Any,
    data: Any,
) -> None:
    w, router, push = worker
    router.send_multipart([b"BTCUSDT", *control]) if control else router.send_multipart(
        [b"BTCUSDT", b""]
    )
    push.send_multipart(data or [b""])
    assert w.control.poll(1000)
    w._drain_control()
    assert w.data.poll(1000)
    w._drain_data()
    while router.poll(0):  # whatever the worker answered is a well-formed message
        _, raw = protocol.routed(router.recv_multipart())
        protocol.parse_from_worker(raw)


def test_a_failing_command_is_answered_500_and_the_worker_carries_on(worker: Any) -> None:
    w, router, _ = worker
    router.send_multipart(
        [b"BTCUSDT", protocol.encode(protocol.WorkerCommand("c-1", Command.STATUS))]
    )
    router.send_multipart(
        [b"BTCUSDT", protocol.encode(protocol.WorkerCommand("c-2", Command.PAUSE))]
    )
    replies: dict[str | None, int] = {}
    while len(replies) < 2:
        assert w.control.poll(1000) or router.poll(1000)
        w._drain_control()
        while router.poll(50):
            _, raw = protocol.routed(router.recv_multipart())
            reply = protocol.parse_from_worker(raw)
            assert isinstance(reply, protocol.Reply)
            replies[reply.id] = reply.status
    assert replies == {"c-1": 500, "c-2": 200}


def test_a_malformed_data_frame_is_skipped_and_the_next_applied(worker: Any) -> None:
    w, _, push = worker
    push.send_multipart([b"md.trades.v1", b"value"])  # no meta frame
    push.send_multipart(protocol.pack_data(b"md.trades.v1", b"value", 0, 5, 1_000, False))
    assert w.data.poll(1000)
    while w.data.poll(100):
        w._drain_data()
    assert [(f.topic, f.offset) for f in w.applied] == [("md.trades.v1", 5)]
