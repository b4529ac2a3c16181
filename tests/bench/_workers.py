"""The router benchmark's worker side: 10 counting processes and the PUSH sockets feeding them.

Each symbol gets a PUSH socket bound as the supervisor binds it (SNDHWM 1000,
ipc) and a counting process (tests/bench/_counter.py) that PULLs from it
(RCVHWM 1000) and acknowledges must-deliver messages over a DEALER to our
ROUTER, as a worker does.

The PUSH sockets are :class:`WaitingPush`: a send that meets a full queue
waits for room instead of failing, and is counted. On these 2 cores ten
worker processes, their ZeroMQ I/O threads and the broker cannot take
messages as fast as one loop can push them (each message costs ~7 us of
transport and receive CPU across processes, beside the loop's own), so a
loop sending NOBLOCK sheds whatever it outruns, and a rate with shedding says
nothing. Waiting instead makes every pass deliver everything (zero shed,
checked by count) and measures the rate at which the whole shape delivers;
``waits`` says how often a queue was full, where the supervisor would have shed
market data (or buffered a must-deliver message) instead. With ``blocking``
False the socket behaves exactly as a plain NOBLOCK PUSH. It wraps
send_multipart and send (the forwarder and the router both call send).
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import zmq

from mmsvc.adapters.zmq import protocol
from mmsvc.devstack import stack
from tests.bench._counter import END, QUIT
from tests.bench._stack import BenchStack
from tests.fixtures.waiting import wait_for

QUEUE_HWM = 1000  # the spec's per-worker queue (processes/supervisor/main.py)
WAIT_LIMIT_MS = 30_000  # a worker that takes no message for this long is broken
REPO = Path(__file__).resolve().parents[2]


class WaitingPush(zmq.Socket[bytes]):
    """A PUSH socket whose full queue makes a send wait (counted) rather than fail."""

    blocking = True
    waits = 0

    def send_multipart(  # type: ignore[override]  # the router's PushSocket call shape
        self,
        msg_parts: Sequence[Any],
        flags: int = 0,  # noqa: ARG002 - zmq's signature; this socket always sends NOBLOCK
        copy: bool = True,  # noqa: ARG002
        track: bool = False,  # noqa: ARG002
    ) -> Any:
        try:
            return super().send_multipart(msg_parts, zmq.NOBLOCK)
        except zmq.Again:
            if not self.blocking:
                raise
        self.waits += 1
        if not self.poll(WAIT_LIMIT_MS, zmq.POLLOUT):
            raise TimeoutError("a counting worker stopped taking messages")
        return super().send_multipart(msg_parts)

    def send(  # type: ignore[override]  # the router's send_frames call shape
        self,
        data: Any,
        flags: int = 0,
        copy: bool = True,  # noqa: ARG002 - zmq's signature; only flags matter here
        track: bool = False,  # noqa: ARG002
        **kw: Any,  # noqa: ARG002
    ) -> Any:
        # Only a message's first frame can meet a full queue; later frames never do.
        try:
            return super().send(data, flags | zmq.NOBLOCK)
        except zmq.Again:
            if not self.blocking:
                raise
        self.waits += 1
        if not self.poll(WAIT_LIMIT_MS, zmq.POLLOUT):
            raise TimeoutError("a counting worker stopped taking messages")
        return super().send(data, flags & ~zmq.NOBLOCK)


class Workers:
    """10 counting worker processes, a PUSH socket to each, a ROUTER for their ACKs."""

    def __init__(self, bench: BenchStack, symbols: Sequence[str]) -> None:
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        sockets = bench.run_dir / "sockets"
        sockets.mkdir()
        self.control = self.ctx.socket(zmq.ROUTER)
        self.control.setsockopt(zmq.LINGER, 0)
        control_endpoint = protocol.worker_control_endpoint(sockets)
        self.control.bind(control_endpoint)
        self.pushes: dict[bytes, WaitingPush] = {}
        self.on_ack: Callable[[str, list[Any]], None] = lambda _symbol, _acks: None
        for symbol in symbols:
            push: WaitingPush = self.ctx.socket(zmq.PUSH, socket_class=WaitingPush)  # type: ignore[assignment]  # pyzmq types socket_class loosely
            push.setsockopt(zmq.SNDHWM, QUEUE_HWM)
            push.setsockopt(zmq.LINGER, 0)
            endpoint = protocol.data_endpoint(sockets, symbol)
            push.bind(endpoint)
            self.pushes[symbol.encode()] = push
            argv = [
                sys.executable,
                "-m",
                "tests.bench._counter",
                symbol,
                endpoint,
                control_endpoint,
            ]
            stack.start_process(bench.run_dir, f"counter-{symbol}", argv, {"PYTHONPATH": str(REPO)})
        hello: set[str] = set()

        def all_said_hello() -> bool:
            while self.control.poll(0):
                identity, _ = self.control.recv_multipart()
                hello.add(identity.decode())
            return len(hello) == len(symbols)

        wait_for(all_said_hello, 30, "the counting workers")

    def blocking(self, on: bool) -> None:
        """Waiting sends (the benchmark's passes) or plain NOBLOCK (the supervisor's)."""
        for push in self.pushes.values():
            push.blocking = on

    def waits(self) -> int:
        """Sends that met a full queue since the last call."""
        total = sum(push.waits for push in self.pushes.values())
        for push in self.pushes.values():
            push.waits = 0
        return total

    def drain(self) -> list[tuple[str, dict[str, Any]]]:
        """Handle waiting ACKs (as the supervisor's loop does); return other messages."""
        other: list[tuple[str, dict[str, Any]]] = []
        while self.control.poll(0):
            identity, raw = self.control.recv_multipart()
            message = json.loads(raw)
            if message.get("t") == protocol.Kind.ACK:
                self.on_ack(identity.decode(), message["d"])
            else:
                other.append((identity.decode(), message))
        return other

    def finish(self) -> dict[str, dict[str, Any]]:
        """Send END after the data (in order, waiting for room), collect every worker's count."""
        for push in self.pushes.values():
            push.send(END)
        reports: dict[str, dict[str, Any]] = {}

        def all_reported() -> bool:
            reports.update((s, m) for s, m in self.drain() if m.get("t") == "count")
            return len(reports) == len(self.pushes)

        wait_for(all_reported, 60, "the counting workers' reports")
        return reports

    def close(self) -> None:
        """Tell every counting process to exit, then close the sockets."""
        for push in self.pushes.values():
            with contextlib.suppress(zmq.Again):  # else stack.down stops it with its group
                push.send(QUIT, zmq.NOBLOCK)
        time.sleep(0.2)
        self.ctx.destroy(linger=0)  # closes every socket made by ctx.socket, then terms
