"""The registry's HTTP/1.1 server: keep-alive, TCP_NODELAY, a thread per connection."""

from __future__ import annotations

import json
import logging
import signal
import socket
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import psycopg

from mmsvc.devstack.registry.errors import RegistryError
from mmsvc.devstack.registry.routes import route
from mmsvc.devstack.registry.store import SchemaStore

log = logging.getLogger("mmsvc.registry")

CONTENT_TYPE = "application/vnd.schemaregistry.v1+json"


class RegistryHandler(BaseHTTPRequestHandler):
    """One HTTP/1.1 keep-alive connection to the registry."""

    protocol_version = "HTTP/1.1"
    # Buffer the response so headers and body leave in one segment at the
    # flush that ends each request.
    wbufsize = 64 * 1024
    timeout = 300  # an idle keep-alive connection frees its thread after this
    server: RegistryServer

    def setup(self) -> None:
        """Turn Nagle off: with it on, each response can wait ~40 ms for a delayed ACK."""
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().setup()

    def do_GET(self) -> None:
        """Dispatch a GET."""
        self._dispatch("GET")

    def do_POST(self) -> None:
        """Dispatch a POST."""
        self._dispatch("POST")

    def do_PUT(self) -> None:
        """Dispatch a PUT."""
        self._dispatch("PUT")

    def do_DELETE(self) -> None:
        """Dispatch a DELETE."""
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = parts.path.strip("/")
        # Split before unquoting: a subject may contain an encoded '/'.
        segments = [unquote(s) for s in path.split("/")] if path else []
        query = {key: values[-1] for key, values in parse_qs(parts.query).items()}
        try:
            body = self._read_body()
            endpoint, params = route(method, segments)
            status, payload = 200, endpoint(self.server.store, params, query, body)
        except RegistryError as exc:
            status, payload = exc.status, exc.body()
        except psycopg.Error:
            log.exception("store error on %s %s", method, self.path)
            status = 500
            payload = {"error_code": 50001, "message": "Error in the backend data store"}
        # Any other failure still gets an answer, so the keep-alive connection
        # stays in step instead of being dropped mid-request.
        except Exception:
            log.exception("internal error on %s %s", method, self.path)
            status, payload = 500, {"error_code": 500, "message": "Internal Server Error"}
        self._send(status, payload)

    def _read_body(self) -> Any:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError as exc:
            self.close_connection = True  # the body's end is unknown
            raise RegistryError(400, 400, "Bad Content-Length") from exc
        if length <= 0:
            return None
        raw = self.rfile.read(length)
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise RegistryError(400, 400, f"Unparsable request body: {exc}") from exc

    def _send(self, status: int, payload: Any) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", CONTENT_TYPE)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """One DEBUG line per request."""
        log.debug("%s " + format, self.address_string(), *args)


class RegistryServer(ThreadingHTTPServer):
    """A thread per connection, all sharing one ``SchemaStore``."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], store: SchemaStore) -> None:
        super().__init__(address, RegistryHandler)
        self.store = store


def serve(host: str, port: int, database_url: str) -> None:
    """Serve until SIGTERM or SIGINT, then close the socket and the database."""
    store = SchemaStore(database_url)
    server = RegistryServer((host, port), store)

    def stop(_signum: int, _frame: FrameType | None) -> None:
        # shutdown() waits for serve_forever() to return, which runs on this
        # (the main) thread, so it must be called from another one.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("schema registry listening on http://%s:%d", host, port)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        store.close()
    log.info("schema registry stopped")
