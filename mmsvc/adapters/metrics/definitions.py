"""What the service exposes to Prometheus: names, kinds, labels, buckets; no metric objects.

Kept apart from :mod:`mmsvc.adapters.metrics.registry` so that tests (and the
dashboard and alert checks) can read the catalogue without creating a metric,
which would fix prometheus_client's process mode too early.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mmsvc.domain.model import RiskTrigger, SymbolState

Kind = Literal["gauge", "counter", "histogram"]

STATES: tuple[str, ...] = tuple(s.value for s in SymbolState)
# STALE_DATA pulls quotes and halts nothing (ARCHITECTURE D7): it is no kill switch.
KILL_REASONS: tuple[str, ...] = tuple(
    r.value for r in RiskTrigger if r is not RiskTrigger.STALE_DATA
)
PNL_TYPES: tuple[str, ...] = ("realized", "unrealized")
# D22: the differences a worker's reconciliation finds between the venue and itself.
RECONCILE_KINDS: tuple[str, ...] = (
    "venue_only",  # open at the venue, unknown or unwanted here: canceled by id
    "unknown_found",  # a timed-out place the venue lists after all
    "canceled_but_open",  # CANCELED here, still open at the venue
    "worker_only",  # open here, absent from the venue's listing
    "unknown_absent",  # a timed-out place absent for VENUE_HOLD_MAX
)

# Quote computation is sub-millisecond (spec): 5 us to 10 ms.
QUOTE_BUCKETS = (5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2)
# Order placement has a 50 ms budget (RESPONSE_TIMEOUT): dense around it.
ORDER_BUCKETS = (1e-3, 2.5e-3, 5e-3, 1e-2, 2e-2, 3e-2, 4e-2, 5e-2, 7.5e-2, 0.1, 0.25, 0.5, 1.0)


@dataclass(frozen=True, slots=True)
class MetricDef:
    """One exposed metric; ``name`` is the family name as Prometheus queries it."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()

    @property
    def sample_names(self) -> tuple[str, ...]:
        """Every series name this family puts in the exposition."""
        if self.kind == "histogram":
            return tuple(f"{self.name}_{s}" for s in ("bucket", "sum", "count"))
        return (self.name,)


def _gauge(name: str, help_: str, *labels: str) -> MetricDef:
    return MetricDef(name, "gauge", help_, labels)


def _counter(name: str, help_: str, *labels: str) -> MetricDef:
    return MetricDef(name, "counter", help_, labels)


# The nine metrics of the spec (Observability), names and labels exactly as listed.
SPEC_METRICS: tuple[MetricDef, ...] = (
    _gauge("mm_inventory_usdt", "Current inventory value in USDT.", "symbol"),
    _gauge("mm_open_orders", "Open market maker orders.", "symbol"),
    _gauge("mm_spread_bps", "Quoted spread in basis points.", "symbol"),
    _gauge("mm_pnl_usdt", "Realized and unrealized P&L in USDT.", "symbol", "type"),
    _counter("mm_kill_switch_total", "Kill switch triggers.", "symbol", "reason"),
    MetricDef(
        "mm_quote_compute_latency_seconds",
        "histogram",
        "Quote computation latency.",
        buckets=QUOTE_BUCKETS,
    ),
    MetricDef(
        "mm_order_placement_latency_seconds",
        "histogram",
        "Order Service request latency.",
        buckets=ORDER_BUCKETS,
    ),
    _gauge("mm_kafka_lag_seconds", "Kafka consumer lag (ARCHITECTURE D8).", "topic"),
    _gauge("mm_state_gauge", "1 for the symbol's current state, else 0.", "symbol", "state"),
)

# What operators need to see trouble early.
OPERATOR_METRICS: tuple[MetricDef, ...] = (
    _counter("mm_messages_routed_total", "Kafka messages handed to a worker."),
    _counter(
        "mm_messages_dropped_total",
        "Kafka messages not delivered, by reason (queue_full is shed market data, D1).",
        "reason",
    ),
    _counter("mm_decode_errors_total", "Messages that failed to decode.", "topic"),
    _counter("mm_order_rejects_total", "Orders rejected, once per client_order_id.", "symbol"),
    _counter(
        "mm_reconcile_mismatch_total",
        "Differences between the venue's open orders and a worker's own, by kind (D22).",
        "symbol",
        "kind",
    ),
    _counter("mm_worker_restarts_total", "Worker processes restarted after dying.", "symbol"),
    _gauge("mm_outbox_backlog", "Outbox rows not yet published to Kafka."),
    _gauge("mm_auth_disabled", "1 while the admin API runs with DISABLE_AUTH=true."),
    # D24: bad data refused at the edge, and must-deliver messages held for an operator.
    _counter(
        "mm_messages_rejected_total",
        "Decoded messages refused by the wire rules (D24, D31), by topic and reason code.",
        "topic",
        "reason",
    ),
    # D25: Redis is a cache the service runs without; operators still need to know.
    _gauge(
        "mm_redis_up",
        "1 while Redis answers this process, 0 while its calls fail or wait out a pause (D25).",
        "process",
    ),
    _gauge(
        "mm_dead_letters",
        "Uncleared dead letters of a symbol; its quotes are pulled while above 0 (D24, D31).",
        "symbol",
    ),
)

ALL_METRICS: tuple[MetricDef, ...] = SPEC_METRICS + OPERATOR_METRICS
BY_NAME: dict[str, MetricDef] = {m.name: m for m in ALL_METRICS}
SAMPLE_NAMES: frozenset[str] = frozenset(s for m in ALL_METRICS for s in m.sample_names)
