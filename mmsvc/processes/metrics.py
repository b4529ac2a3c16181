"""The metrics process (console script ``mmsvc-metrics``): one endpoint for every process.

Every mmsvc process writes its metrics as files under PROMETHEUS_MULTIPROC_DIR;
this process merges them at each scrape and serves the result at
``http://0.0.0.0:METRICS_PORT/metrics`` (ARCHITECTURE: supervisord runs it).
At start-up it removes the files of processes that are no longer running.
"""

from __future__ import annotations

import logging
import os
import signal
import threading

from mmsvc.adapters.metrics import set_auth_disabled, setup_multiprocess
from mmsvc.adapters.metrics.exposition import metrics_app, serve
from mmsvc.config import load_or_exit
from mmsvc.observability.logs import configure_logging

log = logging.getLogger("mmsvc.metrics")


def main() -> None:
    """Serve the merged metrics until SIGTERM or SIGINT."""
    settings = load_or_exit(os.environ)
    configure_logging(settings.service_name, settings.log_level, "metrics")
    directory = settings.prometheus_multiproc_dir
    setup_multiprocess(directory, clean=True)
    # Present from the endpoint's start, whether or not the admin API runs yet
    # (the admin writes it too); both read the environment supervisord gives.
    set_auth_disabled(settings.disable_auth)
    server = serve("0.0.0.0", settings.metrics_port, metrics_app(directory))

    def stop(_signum: int, _frame: object) -> None:
        # shutdown() waits for serve_forever() to return: call it from another thread.
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info(
        "serving metrics",
        extra={"port": server.server_port, "directory": str(directory)},
    )
    server.serve_forever()
    server.server_close()
    log.info("metrics endpoint stopped")


if __name__ == "__main__":
    main()
