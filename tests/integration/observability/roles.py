"""Stand-ins for the service's processes, run as real subprocesses by the tests.

``python -m tests.integration.observability.roles worker BTCUSDT PAUSED 1234.5``
writes a worker's metrics and waits to be killed; ``supervisor`` writes the
supervisor's; ``traced`` emits the spans of one quote and one admin call to the
OTLP endpoint in OPENOBSERVE_OTLP_ENDPOINT, logging JSON lines on stderr.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable

from flask import Flask

from mmsvc.adapters import metrics
from mmsvc.observability import tracing
from mmsvc.observability.logs import configure_logging

READY = "ready"


def worker(symbol: str, state: str, inventory: str) -> None:
    metrics.setup_multiprocess(os.environ["PROMETHEUS_MULTIPROC_DIR"])
    metrics.observe_worker(
        symbol,
        state=state,
        inventory_usdt=float(inventory),
        open_orders=2,
        spread_bps=10.0,
        realized_pnl_usdt=1.5,
        unrealized_pnl_usdt=-0.5,
    )
    metrics.kill_switch_fired(symbol, "REJECT_STORM")
    metrics.order_rejected(symbol)
    metrics.observe_quote_latency(0.00004)
    metrics.observe_order_latency(0.012)
    metrics.decode_error("md.trades.v1")
    metrics.message_rejected("md.orderbook.snap.v1", "non_finite_price")
    metrics.set_dead_letters(symbol, 0)
    _ready_then_wait()


def supervisor() -> None:
    metrics.setup_multiprocess(os.environ["PROMETHEUS_MULTIPROC_DIR"], clean=True)
    for topic, lag in (("md.orderbook.delta.v1", 0.25), ("engine.event.v1", 0.0)):
        metrics.set_kafka_lag(topic, lag)
    metrics.observe_router({"routed": 100, "dropped_other_account": 3, "shed_queue_full": 2})
    metrics.worker_restarted("BTCUSDT")
    metrics.set_outbox_backlog(4)
    metrics.set_redis_up("supervisor", True)
    _ready_then_wait()


def traced() -> None:
    configure_logging("mmsvc", "INFO", "worker", symbol="BTCUSDT")
    log = logging.getLogger("mmsvc.worker")
    assert tracing.configure_tracing("mmsvc", os.environ["OPENOBSERVE_OTLP_ENDPOINT"])
    with tracing.tick_span("BTCUSDT", time.time_ns()):
        with tracing.span("mm.quote"):
            log.info("quoted")
        with tracing.span("mm.order_request", {"mm.orders": 2}):
            log.info("orders sent", extra={"traceparent": tracing.trace_headers()["traceparent"]})
    app = Flask("admin")
    tracing.instrument_flask(app)

    @app.get("/v1/mm-configs/<symbol>/status")
    def status(symbol: str) -> dict[str, str]:
        log.info("status asked", extra={"symbol": symbol})
        return {"symbol": symbol}

    assert app.test_client().get("/v1/mm-configs/ETHUSDT/status").status_code == 200
    tracing.shutdown_tracing()


def _ready_then_wait() -> None:
    print(READY, flush=True)  # the parent test waits for this line
    while True:
        time.sleep(60)


if __name__ == "__main__":
    role, *args = sys.argv[1:]
    roles: dict[str, Callable[..., None]] = {
        "worker": worker,
        "supervisor": supervisor,
        "traced": traced,
    }
    roles[role](*args)
