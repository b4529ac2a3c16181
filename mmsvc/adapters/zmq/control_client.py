"""The admin process's end of the control channel to the supervisor (ARCHITECTURE "shape").

One request (:class:`protocol.Request`) is one JSON frame on a DEALER socket
connected to the supervisor's admin ROUTER; the answer is one
:class:`protocol.Reply` with an HTTP-like status. Each thread keeps its own DEALER (ZeroMQ
sockets are not thread-safe) and each process its own context (gunicorn forks
after import). Replies are matched by id, so a late answer to an abandoned
request is dropped rather than taken for the next one.

``ZMQ_IMMEDIATE`` makes a send fail fast while no supervisor is connected, so
"the supervisor is down" is known in ``connect_timeout_s`` instead of after a
whole reply timeout; a supervisor that is connected but silent (stopped,
hung) is known after ``timeout_s``. Either way :class:`SupervisorUnavailableError`.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import zmq

from mmsvc.adapters.zmq import protocol
from mmsvc.domain.state import Command

DEFAULT_TIMEOUT_S = 7.0
DEFAULT_CONNECT_TIMEOUT_S = 0.5

Answer = tuple[int, dict[str, Any]]


class SupervisorUnavailableError(RuntimeError):
    """The supervisor could not be reached or did not answer in time; nothing is known."""


class ControlClient:
    """Sends admin commands to the supervisor and returns (status, body); thread- and fork-safe."""

    def __init__(
        self,
        endpoint: str,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S,
        curve_dir: Path | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.curve_dir = curve_dir  # CURVE keys for a tcp:// endpoint (D24)
        self.timeout_s = timeout_s
        self._connect_timeout_ms = max(1, int(connect_timeout_s * 1000))
        self._lock = threading.Lock()
        self._pid = -1
        self._ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"ControlClient({self.endpoint!r})"

    def request(
        self,
        cmd: Command,
        *,
        actor: str,
        symbol: str | None = None,
        args: Mapping[str, Any] | None = None,
        reason: str | None = None,
        timeout_s: float | None = None,
    ) -> Answer:
        """Send one command and wait for its answer; SupervisorUnavailableError otherwise."""
        request_id = str(uuid.uuid4())
        message = protocol.Request(request_id, cmd, symbol, dict(args or {}), actor, reason)
        sock = self._socket()
        try:
            sock.send(protocol.encode(message))
        except zmq.Again:
            self._discard(sock)
            raise SupervisorUnavailableError(
                f"no supervisor connected at {self.endpoint}"
            ) from None
        return self._await(sock, request_id, timeout_s or self.timeout_s)

    def ping(self, timeout_s: float = 1.0) -> dict[str, Any]:
        """The supervisor's health body (workers, lag, router); raises when unreachable."""
        status, body = self.request(Command.PING, actor="system", timeout_s=timeout_s)
        if status != 200:
            raise SupervisorUnavailableError(f"supervisor answered ping with {status}")
        return body

    def close(self) -> None:
        """Close every socket of this process."""
        with self._lock:
            if self._ctx is not None and self._pid == os.getpid():
                self._ctx.destroy(linger=0)
            self._ctx = None
            self._local = threading.local()

    def _await(self, sock: zmq.Socket[bytes], request_id: str, timeout_s: float) -> Answer:
        deadline = time.monotonic() + timeout_s
        while True:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0 or not sock.poll(remaining_ms, zmq.POLLIN):
                # A reply may still come; a fresh socket guarantees it is never
                # read as the answer to the next request of this thread.
                self._discard(sock)
                raise SupervisorUnavailableError(
                    f"the supervisor did not answer within {timeout_s:g}s"
                )
            frames = sock.recv_multipart()
            try:
                reply = protocol.parse_reply(protocol.single_frame(frames))
            except protocol.ProtocolError as exc:
                if protocol.request_id_of(frames[-1]) == request_id:
                    self._discard(sock)
                    raise SupervisorUnavailableError(f"malformed supervisor reply: {exc}") from None
                continue  # garbage, or a malformed answer to an abandoned request
            if reply.id == request_id:
                return reply.status, reply.body

    def _socket(self) -> zmq.Socket[bytes]:
        ctx = self._context()
        sock: zmq.Socket[bytes] | None = getattr(self._local, "sock", None)
        if sock is None or sock.closed:
            sock = ctx.socket(zmq.DEALER)
            sock.setsockopt(zmq.LINGER, 0)
            sock.setsockopt(zmq.IMMEDIATE, 1)
            sock.setsockopt(zmq.SNDTIMEO, self._connect_timeout_ms)
            protocol.connect_control(sock, self.endpoint, self.curve_dir)
            self._local.sock = sock
        return sock

    def _context(self) -> zmq.Context[zmq.Socket[bytes]]:
        with self._lock:
            if self._ctx is None or self._pid != os.getpid():
                # After a fork the parent's context and sockets must not be used.
                self._ctx = zmq.Context()
                self._pid = os.getpid()
                self._local = threading.local()
            return self._ctx

    def _discard(self, sock: zmq.Socket[bytes]) -> None:
        sock.close(linger=0)
        self._local.sock = None
