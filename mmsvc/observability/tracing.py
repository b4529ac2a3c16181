"""OpenTelemetry tracing, on only when OPENOBSERVE_OTLP_ENDPOINT is set.

When it is unset nothing is installed and no SDK is even imported: every
helper returns one shared do-nothing context manager (see
tests/bench/bench_tracing.py for what that costs). When it is set, spans go
through a BatchSpanProcessor (export off the hot path, in the background) to
an OTLP/HTTP exporter.

The worker's trace of one quote decision::

    with tracing.tick_span(symbol, received_ns):       # market data arrival ...
        with tracing.span("mm.quote"):                 # ... quote computation ...
            quotes = engine.requote(...)
        with tracing.span("mm.order_request"):         # ... to the order requests
            client.place(..., headers=tracing.trace_headers())
"""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

if TYPE_CHECKING:
    from flask import Flask, Response
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

Attributes = Mapping[str, str | int | float | bool]
TRACES_PATH = "/v1/traces"

_NOOP: AbstractContextManager[Any] = contextlib.nullcontext()
_ROOT = otel_context.Context()  # an empty context: a span started in it begins a new trace
_tracer: trace.Tracer | None = None
_provider: TracerProvider | None = None


def configure_tracing(
    service: str, endpoint: str | None, *, exporter: SpanExporter | None = None
) -> bool:
    """Export spans to ``endpoint`` (OTLP/HTTP) when it is set; True when tracing is on.

    ``endpoint`` is the collector's base URL (``/v1/traces`` is appended unless
    present); ``user:password@`` in it becomes a Basic Authorization header, as
    OpenObserve expects, else OTEL_EXPORTER_OTLP_HEADERS applies. ``exporter``
    replaces the OTLP exporter (tests, other backends).
    """
    global _tracer, _provider
    if exporter is None:
        if endpoint is None:
            return False
        exporter = _otlp_exporter(endpoint)
    from opentelemetry.sdk.resources import Resource  # noqa: PLC0415 - only when tracing is on
    from opentelemetry.sdk.trace import TracerProvider  # noqa: PLC0415
    from opentelemetry.sdk.trace.export import BatchSpanProcessor  # noqa: PLC0415

    shutdown_tracing()
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _provider, _tracer = provider, provider.get_tracer("mmsvc")
    return True


def shutdown_tracing() -> None:
    """Export the spans still queued and stop tracing (also runs at interpreter exit)."""
    global _tracer, _provider
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()


def tracing_enabled() -> bool:
    """Whether spans are being recorded in this process."""
    return _tracer is not None


def tick_span(symbol: str, received_ns: int | None = None) -> AbstractContextManager[Any]:
    """Start a new trace for one market data message, from ``received_ns`` (time.time_ns())."""
    tracer = _tracer
    if tracer is None:
        return _NOOP
    return tracer.start_as_current_span(
        "mm.tick",
        context=_ROOT,
        kind=trace.SpanKind.CONSUMER,
        start_time=received_ns,
        attributes={"mm.symbol": symbol},
    )


def span(name: str, attributes: Attributes | None = None) -> AbstractContextManager[Any]:
    """Start a child of the current span (or a new trace when there is none)."""
    tracer = _tracer
    if tracer is None:
        return _NOOP
    return tracer.start_as_current_span(name, attributes=attributes)


def trace_headers() -> dict[str, str]:
    """W3C ``traceparent`` headers for an outgoing request; empty when tracing is off."""
    headers: dict[str, str] = {}
    if _tracer is not None:
        propagate.inject(headers)
    return headers


def instrument_flask(app: Flask) -> None:
    """Give each request of ``app`` a server span named after its route; no-op when off.

    The hooks check at request time, so the order of ``configure_tracing`` and
    this call does not matter.
    """
    from flask import g, request  # noqa: PLC0415 - only the admin process has Flask

    @app.before_request
    def _start_span() -> None:
        tracer = _tracer
        if tracer is None:
            return
        route = request.url_rule.rule if request.url_rule is not None else request.path
        attributes: dict[str, str] = {"http.request.method": request.method, "http.route": route}
        symbol = (request.view_args or {}).get("symbol")
        if symbol:
            attributes["mm.symbol"] = str(symbol)
        current = tracer.start_span(
            f"{request.method} {route}",
            context=propagate.extract(request.headers),
            kind=trace.SpanKind.SERVER,
            attributes=attributes,
        )
        g.mm_span = (current, otel_context.attach(trace.set_span_in_context(current)))

    @app.after_request
    def _record_status(response: Response) -> Response:
        started = g.get("mm_span")
        if started is not None:
            started[0].set_attribute("http.response.status_code", response.status_code)
            if response.status_code >= 500:
                started[0].set_status(trace.StatusCode.ERROR)
        return response

    @app.teardown_request
    def _end_span(exc: BaseException | None) -> None:
        started = g.pop("mm_span", None)
        if started is None:
            return
        current, token = started
        if exc is not None:
            current.record_exception(exc)
            current.set_status(trace.StatusCode.ERROR)
        current.end()
        otel_context.detach(token)


def _otlp_exporter(endpoint: str) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import (  # noqa: PLC0415
        OTLPSpanExporter,
    )

    url, headers = split_endpoint(endpoint)
    return OTLPSpanExporter(endpoint=url, headers=headers)


def split_endpoint(endpoint: str) -> tuple[str, dict[str, str] | None]:
    """The traces URL without credentials, and a Basic Authorization header if it had some."""
    parts = urlsplit(endpoint)
    path = parts.path.rstrip("/")
    if not path.endswith(TRACES_PATH):
        path += TRACES_PATH
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    url = urlunsplit((parts.scheme, netloc, path, parts.query, ""))
    if parts.username is None:
        return url, None
    basic = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    return url, {"Authorization": "Basic " + base64.b64encode(basic).decode()}
