"""The service's Prometheus metrics, created lazily, behind helpers that hide the labels.

Multiprocess rule (ARCHITECTURE: every process writes PROMETHEUS_MULTIPROC_DIR,
one endpoint serves them all). prometheus_client decides between in-memory
and mmap-file values when it is first imported, from PROMETHEUS_MULTIPROC_DIR,
and a metric keeps the mode it was created in. So this module creates no
metric at import: every metric is created by the first helper call, and that
call first switches prometheus_client to files if PROMETHEUS_MULTIPROC_DIR is
set, whatever was imported before. A process therefore only has to call
:func:`setup_multiprocess` (or inherit the variable) before its first helper
call; calling it after that raises instead of silently writing nowhere.

Gauge mode: every gauge is ``livemostrecent``. The exposition then carries
exactly the spec's labels (no ``pid``), shows the value written last across
processes, and drops a process's series when :func:`mark_dead` removes its
file. A restarted worker writes all its gauges at start-up, so its values are
newer than a killed predecessor's even before ``mark_dead`` runs: one series
per symbol either way. (``liveall`` would add a ``pid`` label and show two
series until ``mark_dead``; ``all``/``mostrecent`` would keep a dead worker's
series forever; ``livesum`` would add a dead worker's value to its successor's.)
Counters and histograms sum over every file, dead processes included, so a
total survives its worker's restart.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess, values

from mmsvc.adapters.kafka import topics
from mmsvc.adapters.metrics.definitions import (
    ALL_METRICS,
    KILL_REASONS,
    RECONCILE_KINDS,
    STATES,
    MetricDef,
)

log = logging.getLogger(__name__)

ENV_DIR = "PROMETHEUS_MULTIPROC_DIR"
GAUGE_MODE: Final = "livemostrecent"
Number = float | int


class _CachedGauge:
    """A gauge child that skips the file write when the value has not changed."""

    __slots__ = ("_child", "_last")

    def __init__(self, child: Gauge) -> None:
        self._child = child
        self._last: float | None = None

    def set(self, value: Number) -> None:
        value = float(value)
        if value != self._last:
            self._child.set(value)
            self._last = value


@dataclass(slots=True)
class _Metrics:
    """Every metric object of this process, created once."""

    registry: CollectorRegistry
    by_name: dict[str, Any]
    symbols: dict[str, _SymbolSeries] = field(default_factory=dict)
    router_seen: dict[str, int] = field(default_factory=dict)


class _SymbolSeries:
    """One symbol's gauge and counter children, resolved once."""

    def __init__(self, m: _Metrics, symbol: str) -> None:
        g = m.by_name
        self.inventory = _CachedGauge(g["mm_inventory_usdt"].labels(symbol))
        self.open_orders = _CachedGauge(g["mm_open_orders"].labels(symbol))
        self.spread = _CachedGauge(g["mm_spread_bps"].labels(symbol))
        self.realized = _CachedGauge(g["mm_pnl_usdt"].labels(symbol, "realized"))
        self.unrealized = _CachedGauge(g["mm_pnl_usdt"].labels(symbol, "unrealized"))
        self.states = {s: _CachedGauge(g["mm_state_gauge"].labels(symbol, s)) for s in STATES}
        # Touching the counters makes them appear at 0 for the symbol, so a
        # dashboard and `increase()` see them before the first event.
        self.kills: dict[str, Counter] = {
            r: g["mm_kill_switch_total"].labels(symbol, r) for r in KILL_REASONS
        }
        self.rejects: Counter = g["mm_order_rejects_total"].labels(symbol)
        g["mm_worker_restarts_total"].labels(symbol)  # MMWorkerRestarting counts the first
        for kind in RECONCILE_KINDS:
            g["mm_reconcile_mismatch_total"].labels(symbol, kind)


_lock = threading.Lock()
_metrics: _Metrics | None = None


def setup_multiprocess(directory: Path | str, *, clean: bool = False) -> None:
    """Make this process (and its children) write metrics under ``directory``.

    Call once at start-up, before the first helper call. ``clean`` removes the
    files of processes no longer running (at start-up that is every old file),
    never those of a live one, so it is safe whichever process starts first.
    """
    path = Path(directory).resolve()
    with _lock:
        if _metrics is not None and os.environ.get(ENV_DIR) != str(path):
            raise RuntimeError("setup_multiprocess() must run before the first metric helper call")
        path.mkdir(parents=True, exist_ok=True)
        os.environ[ENV_DIR] = str(path)
        _use_files()
    if clean:
        remove_dead_files(path)


def remove_dead_files(directory: Path) -> list[Path]:
    """Delete the metric files of processes that are no longer running; return them."""
    removed = []
    for f in directory.glob("*.db"):
        pid = _pid_of(f)
        if pid is not None and not _alive(pid):
            f.unlink(missing_ok=True)
            removed.append(f)
    return removed


def mark_dead(pid: int) -> None:
    """Drop a dead process's gauges from the exposition; its counters keep counting.

    Call it once the process is reaped and before its replacement starts: the
    files are named by pid, so a replacement that reused the pid would lose
    its own gauges.
    """
    directory = os.environ.get(ENV_DIR)
    if directory:
        # prometheus_client leaves this function unannotated.
        multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


def local_registry() -> CollectorRegistry:
    """This process's own metrics (tests; the exposition reads the files instead)."""
    return _m().registry


# ------------------------------------------------------------------ worker helpers


def observe_worker(
    symbol: str,
    *,
    state: str | None = None,
    inventory_usdt: Number | None = None,
    open_orders: int | None = None,
    spread_bps: Number | None = None,
    realized_pnl_usdt: Number | None = None,
    unrealized_pnl_usdt: Number | None = None,
) -> None:
    """Publish a symbol's gauges; ``None`` leaves a value as it was, unchanged ones cost nothing."""
    s = _series(symbol)
    if state is not None:
        _one_hot(s, state)
    if inventory_usdt is not None:
        s.inventory.set(inventory_usdt)
    if open_orders is not None:
        s.open_orders.set(open_orders)
    if spread_bps is not None:
        s.spread.set(spread_bps)
    if realized_pnl_usdt is not None:
        s.realized.set(realized_pnl_usdt)
    if unrealized_pnl_usdt is not None:
        s.unrealized.set(unrealized_pnl_usdt)


def set_state(symbol: str, state: str) -> None:
    """Set mm_state_gauge to 1 for ``state`` and 0 for the other states of ``symbol``."""
    _one_hot(_series(symbol), state)


def kill_switch_fired(symbol: str, reason: str) -> None:
    """Count one kill switch trigger of ``symbol`` (a global one: each worker counts its own)."""
    if reason not in KILL_REASONS:
        raise ValueError(f"unknown kill switch reason {reason!r}; expected one of {KILL_REASONS}")
    _series(symbol).kills[reason].inc()


def order_rejected(symbol: str) -> None:
    """Count one rejected order (once per client_order_id, ARCHITECTURE D10)."""
    _series(symbol).rejects.inc()


def observe_quote_latency(seconds: float) -> None:
    """Record how long one quote computation took."""
    _m().by_name["mm_quote_compute_latency_seconds"].observe(seconds)


def observe_order_latency(seconds: float) -> None:
    """Record how long one Order Service request took."""
    _m().by_name["mm_order_placement_latency_seconds"].observe(seconds)


def reconcile_mismatch(symbol: str, kind: str) -> None:
    """Count one difference a worker's reconciliation found and repaired (D22)."""
    if kind not in RECONCILE_KINDS:
        raise ValueError(f"unknown reconcile kind {kind!r}; expected one of {RECONCILE_KINDS}")
    _m().by_name["mm_reconcile_mismatch_total"].labels(symbol, kind).inc()


def decode_error(topic: str) -> None:
    """Count one message of ``topic`` that could not be decoded."""
    _m().by_name["mm_decode_errors_total"].labels(topic).inc()


def message_rejected(topic: str, reason: str) -> None:
    """Count one decoded message of ``topic`` refused by the wire rules (D24); reason is a code."""
    _m().by_name["mm_messages_rejected_total"].labels(topic, reason).inc()


def set_dead_letters(symbol: str, uncleared: int) -> None:
    """Publish how many dead letters of ``symbol`` wait for an operator (D24, D31)."""
    _m().by_name["mm_dead_letters"].labels(symbol).set(uncleared)


# -------------------------------------------------------------- supervisor helpers


def observe_router(stats: Mapping[str, int]) -> None:
    """Publish the router's running counts (``routed``, ``dropped_<reason>``, ``shed_<reason>``).

    Pass the same cumulative mapping each time (the router's ``stats``); only
    the increase since the previous call is added, so call it from
    housekeeping rather than per message.
    """
    m = _m()
    routed, dropped = m.by_name["mm_messages_routed_total"], m.by_name["mm_messages_dropped_total"]
    for key, total in stats.items():
        delta = total - m.router_seen.get(key, 0)
        if delta < 0:  # a new router started counting from zero
            delta = total
        m.router_seen[key] = total
        if delta <= 0:
            continue
        if key == "routed":
            routed.inc(delta)
        elif key.startswith(("dropped_", "shed_")):
            dropped.labels(key.split("_", 1)[1]).inc(delta)


def set_kafka_lag(topic: str, seconds: float) -> None:
    """Publish the consumer lag of ``topic`` (its worst partition, ARCHITECTURE D8)."""
    _m().by_name["mm_kafka_lag_seconds"].labels(topic).set(seconds)


def worker_restarted(symbol: str) -> None:
    """Count one restart of ``symbol``'s worker after it died."""
    _m().by_name["mm_worker_restarts_total"].labels(symbol).inc()


def set_outbox_backlog(rows: int) -> None:
    """Publish how many outbox rows wait to be published."""
    _m().by_name["mm_outbox_backlog"].set(rows)


def set_redis_up(process: str, up: bool) -> None:
    """Publish whether Redis answers ``process`` (supervisor, admin, worker:SYMBOL; D25)."""
    _m().by_name["mm_redis_up"].labels(process).set(1 if up else 0)


def set_auth_disabled(disabled: bool) -> None:
    """Publish whether the admin API runs with DISABLE_AUTH=true (issue 14)."""
    _m().by_name["mm_auth_disabled"].set(1 if disabled else 0)


# ------------------------------------------------------------------------ internals


def _one_hot(s: _SymbolSeries, state: str) -> None:
    if state not in s.states:
        raise ValueError(f"unknown state {state!r}; expected one of {STATES}")
    for name, gauge in s.states.items():
        gauge.set(1 if name == state else 0)


def _series(symbol: str) -> _SymbolSeries:
    m = _m()
    s = m.symbols.get(symbol)
    if s is None:
        s = m.symbols[symbol] = _SymbolSeries(m, symbol)
    return s


def _m() -> _Metrics:
    m = _metrics
    return m if m is not None else _create()


def _create() -> _Metrics:
    global _metrics  # noqa: PLW0603 - the one lazily created set of metrics per process
    with _lock:
        if _metrics is None:
            directory = os.environ.get(ENV_DIR)
            if directory:
                if not Path(directory).is_dir():
                    raise RuntimeError(f"{ENV_DIR}={directory} is not a directory")
                _use_files()
                log.info("metrics write to files", extra={"directory": directory})
            else:
                log.info("metrics stay in this process: %s is unset", ENV_DIR)
            registry = CollectorRegistry(auto_describe=True)
            _metrics = _Metrics(registry, {d.name: _build(d, registry) for d in ALL_METRICS})
            _touch_zeros(_metrics.by_name)
        return _metrics


def _touch_zeros(by_name: dict[str, Any]) -> None:
    """Create at 0 the counters an alert takes ``increase()`` of before their first event.

    Prometheus sees a series born at 1 as no increase: without its 0 the first
    decode error (MMDecodeErrors) or shed message (MMMarketDataShed) would never alert.
    """
    for topic in sorted(topics.CONSUMED):
        by_name["mm_decode_errors_total"].labels(topic)
    by_name["mm_messages_dropped_total"].labels("queue_full")


def _build(d: MetricDef, registry: CollectorRegistry) -> Any:
    if d.kind == "gauge":
        return Gauge(d.name, d.help, d.labels, registry=registry, multiprocess_mode=GAUGE_MODE)
    if d.kind == "counter":
        return Counter(d.name, d.help, d.labels, registry=registry)
    return Histogram(d.name, d.help, d.labels, registry=registry, buckets=d.buckets)


def _use_files() -> None:
    # Switch prometheus_client to mmap files even if it was imported before the
    # variable was set; metrics created from now on write under ENV_DIR.
    if not getattr(values.ValueClass, "_multiprocess", False):
        values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]


def _pid_of(f: Path) -> int | None:
    tail = f.stem.rsplit("_", 1)[-1]
    return int(tail) if tail.isdigit() else None


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
