"""What every mmsvc process does first: settings, JSON logs, metrics files, tracing.

Order matters: settings (a bad one stops start-up with one line naming it),
then logging, then the multiprocess metrics directory (before any metric is
touched), then tracing (costless when OPENOBSERVE_OTLP_ENDPOINT is unset).
"""

from __future__ import annotations

import logging
import os

from mmsvc.adapters import metrics
from mmsvc.config import Settings, load_or_exit
from mmsvc.observability.logs import configure_logging
from mmsvc.observability.tracing import configure_tracing


def bootstrap(process: str, *, symbol: str | None = None, clean_metrics: bool = False) -> Settings:
    """Configure this process; ``clean_metrics`` for the one that owns the metrics directory."""
    settings = load_or_exit(os.environ)
    configure_logging(settings.service_name, settings.log_level, process, symbol=symbol)
    # The registry client logs every schema fetch at INFO: noise, not events.
    for chatty in ("httpx", "httpx2", "httpcore"):
        logging.getLogger(chatty).setLevel(logging.WARNING)
    metrics.setup_multiprocess(settings.prometheus_multiproc_dir, clean=clean_metrics)
    configure_tracing(settings.service_name, settings.otlp_endpoint)
    return settings
