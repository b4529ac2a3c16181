"""Serves every process's metric files as one Prometheus exposition over HTTP.

prometheus_client does the work (issue 11): ``MultiProcessCollector`` merges
the files at each scrape, ``make_wsgi_app`` renders them (content negotiation,
gzip, ``name[]`` filtering) and its ``ThreadingWSGIServer`` serves them, so a
slow scrape never blocks the next. The one hand-written part is a few lines of
routing that ``start_http_server`` cannot do, because it answers the metrics on
every path: ``/healthz`` for liveness probes, and 404 elsewhere.

The hand-written threaded server this replaces (with TCP_NODELAY) was not
faster: 200 scrapes of 50 symbols' files on the 2-core dev box took a median
of 56-58 ms with it and 39-50 ms with prometheus_client's server (merging the
files dominates), so nothing is kept by hand for speed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer
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


def serve(host: str, port: int, app: WsgiApp) -> WSGIServer:
    """Bind ``host:port`` (port 0 picks a free one); the caller runs ``serve_forever``."""
    return make_server(
        host, port, app, server_class=ThreadingWSGIServer, handler_class=_QuietHandler
    )
