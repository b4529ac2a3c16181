"""Serves every process's metric files as one Prometheus exposition over HTTP."""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from pathlib import Path
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.multiprocess import MultiProcessCollector

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def multiprocess_registry(directory: Path) -> CollectorRegistry:
    """A registry that merges, at each scrape, the files every process wrote under ``directory``."""
    registry = CollectorRegistry()
    # prometheus_client leaves the collector's constructor unannotated.
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    return registry


def metrics_app(directory: Path) -> WsgiApp:
    """WSGI app: ``/metrics`` is the merged exposition, ``/healthz`` answers ok, else 404."""
    exposition = make_wsgi_app(multiprocess_registry(directory))

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            body: Iterable[bytes] = exposition(environ, start_response)
            return body
        if path == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found; try /metrics\n"]

    return app


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not events worth a log line."""


class MetricsServer(ThreadingMixIn, WSGIServer):
    """A threaded WSGI server; a slow scrape never blocks the next one."""

    daemon_threads = True
    allow_reuse_address = True

    def get_request(self) -> tuple[socket.socket, Any]:
        conn, addr = super().get_request()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn, addr


def serve(host: str, port: int, app: WsgiApp) -> MetricsServer:
    """Bind ``host:port`` (port 0 picks a free one); the caller runs ``serve_forever``."""
    return make_server(host, port, app, server_class=MetricsServer, handler_class=_QuietHandler)
