"""Prometheus metrics of every mmsvc process; see :mod:`.registry` for the multiprocess rules."""

from mmsvc.adapters.metrics.registry import (
    decode_error,
    kill_switch_fired,
    local_registry,
    mark_dead,
    observe_order_latency,
    observe_quote_latency,
    observe_router,
    observe_worker,
    order_rejected,
    reconcile_mismatch,
    set_kafka_lag,
    set_outbox_backlog,
    set_state,
    setup_multiprocess,
    worker_restarted,
)

__all__ = [
    "decode_error",
    "kill_switch_fired",
    "local_registry",
    "mark_dead",
    "observe_order_latency",
    "observe_quote_latency",
    "observe_router",
    "observe_worker",
    "order_rejected",
    "reconcile_mismatch",
    "set_kafka_lag",
    "set_outbox_backlog",
    "set_state",
    "setup_multiprocess",
    "worker_restarted",
]
