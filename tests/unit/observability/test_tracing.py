"""Tracing is a no-op when no endpoint is set, and records the right spans when one is."""

from __future__ import annotations

import subprocess
import sys

from flask import Flask
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from mmsvc.observability import tracing
from tests.unit.observability.conftest import finished


def test_without_an_endpoint_nothing_is_installed_and_helpers_do_nothing() -> None:
    assert tracing.configure_tracing("mmsvc", None) is False

    assert not tracing.tracing_enabled()
    assert tracing.span("mm.quote") is tracing.tick_span("BTCUSDT")
    with tracing.tick_span("BTCUSDT", 1), tracing.span("mm.quote", {"a": 1}) as inside:
        assert inside is None
    assert tracing.trace_headers() == {}


def test_without_an_endpoint_the_sdk_is_never_imported() -> None:
    code = (
        "import sys; from mmsvc.observability import tracing, logs;"
        "tracing.configure_tracing('mmsvc', None); tracing.span('x');"
        "print(any(m.startswith('opentelemetry.sdk') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_tick_starts_a_new_trace_and_quote_and_order_are_its_children(
    spans: InMemorySpanExporter,
) -> None:
    with tracing.tick_span("BTCUSDT", received_ns=1_000):
        with tracing.span("mm.quote"):
            pass
        with tracing.span("mm.order_request", {"mm.orders": 2}):
            headers = tracing.trace_headers()

    got = finished(spans)
    tick, quote, order = got["mm.tick"], got["mm.quote"], got["mm.order_request"]
    assert tick.parent is None
    assert tick.start_time == 1_000
    assert tick.attributes["mm.symbol"] == "BTCUSDT"
    assert quote.parent.span_id == order.parent.span_id == tick.context.span_id
    assert headers["traceparent"].split("-")[2] == f"{order.context.span_id:016x}"


def test_a_tick_inside_another_span_still_starts_its_own_trace(
    spans: InMemorySpanExporter,
) -> None:
    with tracing.span("outer"), tracing.tick_span("BTCUSDT"):
        pass

    got = finished(spans)
    assert got["mm.tick"].parent is None
    assert got["mm.tick"].context.trace_id != got["outer"].context.trace_id


def admin_app() -> Flask:
    app = Flask("admin")
    tracing.instrument_flask(app)

    @app.get("/v1/mm-configs/<symbol>/status")
    def status(symbol: str) -> dict[str, str]:
        return {"symbol": symbol}

    @app.post("/v1/mm/emergency/kill")
    def kill() -> dict[str, str]:
        raise RuntimeError("supervisor gone")

    return app


def test_admin_requests_get_a_server_span_named_after_the_route(
    spans: InMemorySpanExporter,
) -> None:
    client = admin_app().test_client()
    parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"

    assert (
        client.get("/v1/mm-configs/ETHUSDT/status", headers={"traceparent": parent}).status_code
        == 200
    )
    assert client.post("/v1/mm/emergency/kill").status_code == 500

    got = finished(spans)
    ok, failed = got["GET /v1/mm-configs/<symbol>/status"], got["POST /v1/mm/emergency/kill"]
    assert ok.kind == SpanKind.SERVER
    assert ok.attributes["mm.symbol"] == "ETHUSDT"
    assert ok.attributes["http.response.status_code"] == 200
    assert f"{ok.context.trace_id:032x}" == "0af7651916cd43dd8448eb211c80319c"
    assert failed.status.status_code == StatusCode.ERROR


def test_admin_requests_work_untraced_when_tracing_is_off() -> None:
    assert admin_app().test_client().get("/v1/mm-configs/ETHUSDT/status").json == {
        "symbol": "ETHUSDT"
    }


def test_endpoint_credentials_become_a_basic_header() -> None:
    url, headers = tracing.split_endpoint("https://root%40x.io:p%40ss@oo.example:5080/api/default")

    assert url == "https://oo.example:5080/api/default/v1/traces"
    assert headers == {"Authorization": "Basic cm9vdEB4LmlvOnBAc3M="}
    assert tracing.split_endpoint("http://collector:4318/v1/traces/") == (
        "http://collector:4318/v1/traces",
        None,
    )
