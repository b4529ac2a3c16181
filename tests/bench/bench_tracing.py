"""What tracing costs the worker when OPENOBSERVE_OTLP_ENDPOINT is unset, against a bare call.

Each figure is nanoseconds per iteration of a Python loop (loop overhead
included), the best of several rounds, all measured in this run: a call of an
empty function (the floor), the no-op ``span``/``tick_span`` helpers as the
worker uses them (``with ...: pass``), ``trace_headers()``; then, for scale,
the same span with tracing on (a batch processor and an exporter that drops
everything, so no I/O is counted).
"""

from __future__ import annotations

import gc
import platform
import time
from collections.abc import Callable, Sequence

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from mmsvc.observability import tracing

ITERATIONS = 200_000
ROUNDS = 7


class _DropExporter(SpanExporter):
    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:  # noqa: ARG002 - drops them
        return SpanExportResult.SUCCESS


def _bare() -> None:
    pass


def _loop_bare(n: int) -> None:
    for _ in range(n):
        _bare()


def _loop_span(n: int) -> None:
    span = tracing.span
    for _ in range(n):
        with span("mm.quote"):
            pass


def _loop_tick(n: int) -> None:
    tick = tracing.tick_span
    for _ in range(n):
        with tick("BTCUSDT", 1):
            pass


def _loop_headers(n: int) -> None:
    headers = tracing.trace_headers
    for _ in range(n):
        headers()


def _best_ns(loop: Callable[[int], None], n: int = ITERATIONS) -> float:
    loop(n // 10)  # warm-up
    best = float("inf")
    gc.disable()
    try:
        for _ in range(ROUNDS):
            start = time.perf_counter_ns()
            loop(n)
            best = min(best, (time.perf_counter_ns() - start) / n)
    finally:
        gc.enable()
    return best


def run() -> dict[str, object]:
    """Measure, and return the figures by name."""
    tracing.shutdown_tracing()
    bare = _best_ns(_loop_bare)
    span = _best_ns(_loop_span)
    tick = _best_ns(_loop_tick)
    headers = _best_ns(_loop_headers)
    tracing.configure_tracing("bench", None, exporter=_DropExporter())
    try:
        span_on = _best_ns(_loop_span, ITERATIONS // 10)
    finally:
        tracing.shutdown_tracing()
    return {
        "python": platform.python_version(),
        "iterations": ITERATIONS,
        "bare_call_ns": round(bare, 1),
        "noop_span_ns": round(span, 1),
        "noop_tick_span_ns": round(tick, 1),
        "noop_trace_headers_ns": round(headers, 1),
        "noop_span_over_bare_call": round(span / bare, 2),
        "noop_span_extra_ns": round(span - bare, 1),
        "recorded_span_ns (tracing on, for scale)": round(span_on, 1),
    }
