"""JSON log lines carry the spec's fields, a stack trace on errors, and no secret."""

from __future__ import annotations

import io
import json
import logging
import sys
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from mmsvc.observability import tracing
from mmsvc.observability.logs import JsonLogFormatter, configure_logging, log_symbol
from tests.unit.observability.conftest import finished

Lines = Callable[[], list[dict[str, Any]]]
log = logging.getLogger("mmsvc.test")


def test_a_line_is_one_json_object_with_the_required_fields(log_lines: Lines) -> None:
    log.info("quote sent %s", "bid", extra={"levels": 2})

    (line,) = log_lines()
    assert line["service"] == "mmsvc"
    assert line["process"] == "worker"
    assert line["level"] == "INFO"
    assert line["logger"] == "mmsvc.test"
    assert line["message"] == "quote sent bid"
    assert line["symbol"] == "BTCUSDT"
    assert line["levels"] == 2
    assert line["timestamp"].endswith("Z")
    offset = datetime.fromisoformat(line["timestamp"]).utcoffset()
    assert offset is not None
    assert offset.total_seconds() == 0
    assert "trace_id" not in line
    assert "stack_trace" not in line


def test_warning_is_spelled_warn_as_in_the_spec(log_lines: Lines) -> None:
    log.warning("book unknown")

    assert log_lines()[0]["level"] == "WARN"


def test_an_error_line_carries_the_stack_trace(log_lines: Lines) -> None:
    book: dict[str, int] = {}
    try:
        book["missing"]
    except KeyError:
        log.exception("requote failed")

    (line,) = log_lines()
    assert line["level"] == "ERROR"
    assert line["error"] == "KeyError: 'missing'"
    assert line["stack_trace"].startswith("Traceback (most recent call last)")
    assert "test_an_error_line_carries_the_stack_trace" in line["stack_trace"]


def test_an_uncaught_exception_is_logged_as_one_json_line(log_lines: Lines) -> None:
    def crash() -> None:
        raise RuntimeError("worker loop broke")

    thread = threading.Thread(target=crash, name="order-sender")
    thread.start()
    thread.join()
    try:
        crash()
    except RuntimeError:
        sys.excepthook(*sys.exc_info())  # what the interpreter does with an uncaught one

    in_thread, in_main = log_lines()
    assert in_thread["message"] == "uncaught exception in thread order-sender"
    for line in (in_thread, in_main):
        assert line["level"] == "CRITICAL"
        assert line["error"] == "RuntimeError: worker loop broke"
        assert "in crash" in line["stack_trace"]


def test_symbol_comes_from_extra_then_context_then_the_process(log_lines: Lines) -> None:
    log.info("explicit", extra={"symbol": "ETHUSDT"})
    with log_symbol("SOLUSDT"):
        log.info("in context")
    log.info("process default")

    assert [line["symbol"] for line in log_lines()] == ["ETHUSDT", "SOLUSDT", "BTCUSDT"]


def test_lines_inside_a_span_carry_its_trace_and_span_ids(
    log_lines: Lines, spans: InMemorySpanExporter
) -> None:
    with tracing.tick_span("BTCUSDT"), tracing.span("mm.quote"):
        log.info("quoted")
    log.info("outside")

    quote = finished(spans)["mm.quote"].context
    inside, outside = log_lines()
    assert inside["trace_id"] == f"{quote.trace_id:032x}"
    assert inside["span_id"] == f"{quote.span_id:016x}"
    assert "trace_id" not in outside


def test_secrets_never_reach_a_line(log_lines: Lines) -> None:
    log.info("connecting to %s", "postgresql://mm:hunter2@db:5432/mm")
    log.info("calling", extra={"headers": {"Authorization": "Bearer abc.def"}, "token": "t0k"})
    log.info("body {'client_secret': 'sh', 'password': 'pw'} sent with Bearer xyz.123")
    try:
        raise ConnectionError("redis://:r3dis@cache:6379/0 refused")
    except ConnectionError:
        log.exception("redis down")

    text = repr(log_lines())
    for secret in ("hunter2", "abc.def", "t0k", "'sh'", "pw'", "xyz.123", "r3dis"):
        assert secret not in text, secret
    first, second, *_ = log_lines()
    assert first["message"] == "connecting to postgresql://mm:***@db:5432/mm"
    assert second["headers"] == {"Authorization": "***"}
    assert second["token"] == "***"


def test_the_issue_14_secrets_never_reach_a_line(log_lines: Lines) -> None:
    # A librdkafka config, the environment's names, and an Order Service header.
    log.info("kafka", extra={"config": {"sasl.password": "k4fka", "sasl.username": "mm"}})
    log.info("env KAFKA_SASL_PASSWORD=k4fka ORDER_SERVICE_TOKEN=t0ken-2 ok")
    log.info("order service said 401 to headers %s", {"Authorization": "Bearer t0ken-2"})

    text = repr(log_lines())
    assert "k4fka" not in text
    assert "t0ken-2" not in text
    assert log_lines()[0]["config"] == {"sasl.password": "***", "sasl.username": "mm"}


def test_configuring_again_replaces_the_handler_rather_than_adding_one(log_lines: Lines) -> None:
    again = io.StringIO()
    configure_logging("mmsvc", "INFO", "supervisor", stream=again)
    log.info("once")

    assert log_lines() == []
    (line,) = again.getvalue().splitlines()
    assert json.loads(line)["process"] == "supervisor"
    ours = [h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonLogFormatter)]
    assert len(ours) == 1
