"""Structured logs: one JSON line per event, with the spec's fields and no secret.

Every line carries ``timestamp`` (ISO-8601 UTC), ``level`` (DEBUG, INFO, WARN,
ERROR, CRITICAL), ``service``, ``process``, ``pid``, ``logger`` and
``message``; ``symbol`` where there is one (``extra={"symbol": ...}``, else
:func:`log_symbol`, else the process's symbol given to
:func:`configure_logging`); ``trace_id`` and ``span_id`` inside an
OpenTelemetry span; ``error`` and ``stack_trace`` when logged with exc_info
(``log.exception``). Other ``extra`` fields are kept as they are.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from types import TracebackType
from typing import IO, Any

from opentelemetry import trace
from pythonjsonlogger.core import RESERVED_ATTRS, merge_record_extra
from pythonjsonlogger.json import JsonFormatter

from mmsvc.observability.redact import redact_fields

_LEVELS = {"WARNING": "WARN"}  # the spec's level names (zap's)
_OWN_FIELDS = frozenset({*RESERVED_ATTRS, "symbol", "taskName"})
_symbol: ContextVar[str | None] = ContextVar("mmsvc_log_symbol", default=None)


class JsonLogFormatter(JsonFormatter):
    """Formats a record as one JSON object with the spec's fields, secrets redacted."""

    def __init__(self, service: str, process: str, symbol: str | None = None) -> None:
        super().__init__(json_ensure_ascii=False)
        self._service = service
        self._process = process
        self._symbol = symbol

    def add_fields(
        self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
    ) -> None:
        """Fill ``log_data`` with the fixed fields first, then the record's extras."""
        log_data["timestamp"] = _iso_utc(record.created)
        log_data["level"] = _LEVELS.get(record.levelname, record.levelname)
        log_data["service"] = self._service
        log_data["process"] = self._process
        log_data["pid"] = record.process
        log_data["logger"] = record.name
        log_data["message"] = record.message
        symbol = getattr(record, "symbol", None) or _symbol.get() or self._symbol
        if symbol:
            log_data["symbol"] = symbol
        _add_trace_ids(log_data)
        merge_record_extra(record, log_data, reserved=_OWN_FIELDS)
        for key, value in message_dict.items():  # a dict logged as the message
            if key not in ("exc_info", "stack_info"):
                log_data[key] = value
        _add_exception(log_data, record, message_dict)

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        """Redact secrets from every field, stack traces included."""
        return redact_fields(log_data)


def configure_logging(
    service: str,
    level: str,
    process: str,
    *,
    symbol: str | None = None,
    stream: IO[str] | None = None,
) -> None:
    """Send every log record of this process as JSON lines to ``stream`` (stderr).

    Replaces the root logger's handlers, so calling it again reconfigures
    rather than duplicating lines. ``symbol`` is the process's own symbol (a
    worker's), added to every line that names no other.
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonLogFormatter(service, process, symbol))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.captureWarnings(True)
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_uncaught_in_thread


def _log_uncaught(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    # A crash is an event like any other: one JSON line with its stack trace.
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    logging.getLogger("mmsvc.crash").critical("uncaught exception", exc_info=(exc_type, exc, tb))


def _log_uncaught_in_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_value is None or args.exc_type is SystemExit:
        return
    thread = args.thread.name if args.thread is not None else "?"
    logging.getLogger("mmsvc.crash").critical(
        "uncaught exception in thread %s",
        thread,
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


@contextmanager
def log_symbol(symbol: str) -> Iterator[None]:
    """Tag every line logged in this block (this thread or task) with ``symbol``."""
    token = _symbol.set(symbol)
    try:
        yield
    finally:
        _symbol.reset(token)


def _iso_utc(created: float) -> str:
    stamp = datetime.fromtimestamp(created, UTC).isoformat(timespec="microseconds")
    return stamp.replace("+00:00", "Z")


def _add_trace_ids(log_data: dict[str, Any]) -> None:
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        log_data["trace_id"] = trace.format_trace_id(context.trace_id)
        log_data["span_id"] = trace.format_span_id(context.span_id)


def _add_exception(
    log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]
) -> None:
    stack_trace = message_dict.get("exc_info")
    if stack_trace:
        log_data["stack_trace"] = stack_trace
    if record.exc_info and record.exc_info[1] is not None:
        exc = record.exc_info[1]
        log_data["error"] = f"{type(exc).__name__}: {exc}"
    if message_dict.get("stack_info"):
        log_data["stack"] = message_dict["stack_info"]
