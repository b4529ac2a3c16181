"""A small JSON-over-HTTP/1.1 server for the simulator's endpoints: keep-alive, TCP_NODELAY.

Nagle's algorithm left on adds about 40 ms to a Python ``http.server`` response,
which alone would trip the service's 50 ms response-timeout kill switch
(ARCHITECTURE, "Components that exist only for development"), so every
accepted socket gets TCP_NODELAY. A service can be stopped and started again
on the same port, dropping its open connections: the "refuse connections" fault.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from mmsvc.devstack.exchange import pauses

log = logging.getLogger(__name__)


class HttpError(Exception):
    """An answer other than success: status and the contract's error body."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True, slots=True)
class Request:
    """One HTTP request as an app sees it."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes = b""
    received_ns: int = 0  # wall clock (time.time_ns) when handling began, for latency figures

    def json(self) -> Any:
        """The body as JSON; HttpError 400 when it is not."""
        try:
            return json.loads(self.body or b"null")
        except ValueError as exc:
            raise HttpError(400, "INVALID_REQUEST", f"body is not JSON: {exc}") from exc

    def json_object(self, required: bool = True) -> dict[str, Any]:
        """The body as a JSON object (an empty one when absent and not required)."""
        body = self.json()
        if body is None and not required:
            return {}
        if not isinstance(body, dict):
            raise HttpError(400, "INVALID_REQUEST", "body must be a JSON object")
        return body


@dataclass(frozen=True, slots=True)
class Response:
    """A JSON answer."""

    status: int
    body: Any = field(default_factory=dict)


App = Callable[[Request], Response]


def error_body(code: str, message: str) -> dict[str, Any]:
    """The contract's error body: {error: {code, message}}."""
    return {"error": {"code": code, "message": message}}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: every response carries Content-Length
    server: _Server

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        received_ns = time.time_ns()
        url = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        request = Request(
            method=self.command,
            path=url.path.rstrip("/") or "/",
            query={k: v[-1] for k, v in parse_qs(url.query).items()},
            headers={k.lower(): v for k, v in self.headers.items()},
            body=self.rfile.read(length) if length else b"",
            received_ns=received_ns,
        )
        cpu_ns, app_began_ns = time.thread_time_ns(), time.time_ns()
        try:
            response = self.server.app(request)
        except HttpError as exc:
            response = Response(exc.status, error_body(exc.code, exc.message))
        except Exception as exc:
            log.exception("%s %s failed", self.command, self.path)
            response = Response(500, error_body("INTERNAL", repr(exc)))
        app_ns = time.time_ns() - app_began_ns
        self._send(response)
        pauses.answered(
            self.command,
            request.path,
            received_ns,
            app_ns=app_ns,
            cpu_ns=time.thread_time_ns() - cpu_ns,
        )

    def _send(self, response: Response) -> None:
        payload = json.dumps(response.body, separators=(",", ":")).encode()
        self.send_response(response.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        try:
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            log.warning("client went away before the answer to %s %s", self.command, self.path)
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def get_request(self) -> tuple[socket.socket, Any]:
        sock, address = super().get_request()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with self._connections_lock:
            self._connections.add(sock)
        return sock, address

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def drop_connections(self) -> None:
        """Cut every open connection (their handler threads then end)."""
        with self._connections_lock:
            connections = list(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):  # already closed by the peer
                sock.shutdown(socket.SHUT_RDWR)


class HttpService:
    """An app served on a fixed port, which can stop refusing and start again."""

    def __init__(self, name: str, host: str, port: int, app: App) -> None:
        self.name, self.host, self.port, self.app = name, host, port, app
        self._server: _Server | None = None
        self._lock = threading.Lock()

    @property
    def url(self) -> str:
        """The base URL of the service."""
        return f"http://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the service accepts connections now."""
        return self._server is not None

    def start(self) -> None:
        """Listen and serve in a thread (no-op when running)."""
        with self._lock:
            if self._server is None:
                self._server = _Server((self.host, self.port), self.app)
                threading.Thread(
                    target=self._server.serve_forever, args=(0.05,), name=self.name, daemon=True
                ).start()

    def stop(self) -> None:
        """Close the listening socket and every open connection (no-op when stopped)."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
            server.drop_connections()
