"""Fixtures that leave the root logger and the tracer as they found them."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mmsvc.observability import tracing
from mmsvc.observability.logs import configure_logging


@pytest.fixture
def log_lines() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Configure JSON logging into a buffer; the callable returns the lines parsed so far."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level, sys.excepthook, threading.excepthook)
    buffer = io.StringIO()
    configure_logging("mmsvc", "DEBUG", "worker", symbol="BTCUSDT", stream=buffer)
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    logging.captureWarnings(False)
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])
    sys.excepthook, threading.excepthook = saved[2], saved[3]


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """Tracing on, into memory; off again afterwards."""
    exporter = InMemorySpanExporter()
    assert tracing.configure_tracing("mmsvc", None, exporter=exporter)
    yield exporter
    tracing.shutdown_tracing()


def finished(exporter: InMemorySpanExporter) -> dict[str, Any]:
    """Flush the batch processor and return the finished spans by name."""
    provider = tracing._provider
    assert provider is not None
    provider.force_flush()
    return {s.name: s for s in exporter.get_finished_spans()}
