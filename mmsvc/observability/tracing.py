"""OpenTelemetry tracing, on only when OPENOBSERVE_OTLP_ENDPOINT is set.

When it is unset nothing is installed, no SDK or instrumentation is even
imported, and nothing is patched: every helper returns one shared do-nothing
context manager (see tests/bench/bench_tracing.py for what that costs). When
it is set, spans go through a BatchSpanProcessor (export off the hot path, in
the background) to an OTLP/HTTP exporter, with HTTP's stable semantic
conventions (``http.response.status_code``, ``url.full``).

What OpenTelemetry's own instrumentations do (issue 11):

- the admin API's server spans: ``opentelemetry-instrumentation-flask``
  (:func:`instrument_flask`), named ``METHOD route`` and joined to the
  caller's ``traceparent``;
- every Order Service call: ``opentelemetry-instrumentation-requests``
  patches ``requests`` once tracing is on, so each call is a CLIENT span
  under the current one and carries ``traceparent`` to the venue.

What stays by hand, because no instrumentation covers it and by hand is
cheaper: the worker's per-tick spans. A market data message reaches the worker
over ZeroMQ, not through an instrumented library; its trace must start at the
message's arrival time (``received_ns``) in a fresh root context, and while
tracing is off each call must cost one global read and return a shared
``nullcontext`` (a no-op tracer would still build a span object per tick)::

    with tracing.tick_span(symbol, received_ns):       # market data arrival ...
        with tracing.span("mm.quote"):                 # ... quote computation ...
            quotes = engine.requote(...)
        with tracing.span("mm.order_request"):         # ... to the order requests
            client.submit(...)                         # requests' CLIENT spans
"""

from __future__ import annotations

import base64
import contextlib
import os
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit, urlunsplit

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span

if TYPE_CHECKING:
    from flask import Flask
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
    # The instrumentations read this once, at their first use: HTTP's stable
    # attribute names, unless the deployment chose otherwise.
    os.environ.setdefault("OTEL_SEMCONV_STABILITY_OPT_IN", "http")
    provider = TracerProvider(resource=Resource.create({"service.name": service}))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    _provider, _tracer = provider, provider.get_tracer("mmsvc")
    _instrument_requests(provider)
    return True


def shutdown_tracing() -> None:
    """Export the spans still queued and stop tracing (also runs at interpreter exit)."""
    global _tracer, _provider
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        _uninstrument_requests()
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

    Call it after :func:`configure_tracing` (the app factory does): an app
    created while tracing is off stays untraced and pays nothing per request.
    """
    provider = _provider
    if provider is None:
        return
    from opentelemetry.instrumentation.flask import FlaskInstrumentor  # noqa: PLC0415

    # The instrumentation's signature is unannotated.
    FlaskInstrumentor.instrument_app(  # type: ignore[no-untyped-call]
        app,
        tracer_provider=provider,
        request_hook=_tag_symbol,
        # Probes are polled every few seconds: spans of no interest.
        excluded_urls="/healthz,/readyz",
    )


def _tag_symbol(span: Span, _environ: Mapping[str, Any]) -> None:
    """Name the symbol a request is about (``mm.symbol``), as the worker's spans do."""
    from flask import request  # noqa: PLC0415 - only the admin process has Flask

    symbol = (request.view_args or {}).get("symbol")
    if symbol and span.is_recording():
        span.set_attribute("mm.symbol", str(symbol))


def _instrument_requests(provider: TracerProvider) -> None:
    from opentelemetry.instrumentation.requests import RequestsInstrumentor  # noqa: PLC0415

    RequestsInstrumentor().instrument(tracer_provider=provider)


def _uninstrument_requests() -> None:
    from opentelemetry.instrumentation.requests import RequestsInstrumentor  # noqa: PLC0415

    RequestsInstrumentor().uninstrument()


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
