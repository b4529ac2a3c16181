"""With OPENOBSERVE_OTLP_ENDPOINT set, a quote's and an admin call's spans reach the collector."""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from tests.integration.observability.conftest import REPO, service_env

pytestmark = pytest.mark.integration


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP collector stand-in: records the body of every POST /v1/traces."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _CollectorHandler)
        self.bodies: list[bytes] = []
        self.auth: list[str | None] = []

    def spans(self) -> list[Span]:
        found: list[Span] = []
        for body in self.bodies:
            request = ExportTraceServiceRequest.FromString(body)
            for resource in request.resource_spans:
                for scope in resource.scope_spans:
                    found.extend(scope.spans)
        return found


class _CollectorHandler(BaseHTTPRequestHandler):
    server: Collector

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        if self.path == "/v1/traces":
            self.server.bodies.append(body)
            self.server.auth.append(self.headers.get("Authorization"))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def run_traced(collector: Collector, tmp_path: Path) -> list[dict[str, Any]]:
    """Run the traced role to completion; return its JSON log lines."""
    endpoint = f"http://otel:s3cret@127.0.0.1:{collector.server_port}"
    env = service_env(tmp_path / "prometheus", OPENOBSERVE_OTLP_ENDPOINT=endpoint)
    done = subprocess.run(
        [sys.executable, "-m", "tests.integration.observability.roles", "traced"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [json.loads(line) for line in done.stderr.splitlines() if line.startswith("{")]


def test_spans_arrive_for_a_quote_and_an_admin_call(collector: Collector, tmp_path: Path) -> None:
    logs = run_traced(collector, tmp_path)

    spans = {s.name: s for s in collector.spans()}
    tick, quote, order = spans["mm.tick"], spans["mm.quote"], spans["mm.order_request"]
    admin = spans["GET /v1/mm-configs/<symbol>/status"]
    assert quote.trace_id == order.trace_id == tick.trace_id
    assert quote.parent_span_id == order.parent_span_id == tick.span_id
    assert tick.parent_span_id == b""
    assert admin.kind == Span.SPAN_KIND_SERVER
    assert admin.trace_id != tick.trace_id
    status = {a.key: a.value.int_value for a in admin.attributes}["http.response.status_code"]
    assert status == 200
    # The credentials in the endpoint became a Basic header, never part of the URL.
    assert set(collector.auth) == {"Basic b3RlbDpzM2NyZXQ="}

    by_message = {line["message"]: line for line in logs}
    assert by_message["quoted"]["trace_id"] == tick.trace_id.hex()
    assert by_message["quoted"]["span_id"] == quote.span_id.hex()
    assert by_message["orders sent"]["traceparent"].split("-")[1] == tick.trace_id.hex()
    assert by_message["status asked"]["trace_id"] == admin.trace_id.hex()
    assert by_message["status asked"]["symbol"] == "ETHUSDT"
    assert by_message["quoted"]["symbol"] == "BTCUSDT"
