"""gunicorn settings of the admin API: bind HTTP_HOST:HTTP_PORT, JSON logs, time for a kill.

Used as ``gunicorn -c python:mmsvc.processes.admin.gunicorn_conf
mmsvc.processes.admin.wsgi:app``. The app is imported in each worker after the
fork (no preload), so no database, Redis or ZeroMQ connection is ever shared
between processes. HTTP_HOST defaults to 127.0.0.1: the API is reachable from
another host only when the deployment says so (the container sets 0.0.0.0).
"""

from __future__ import annotations

import os

from mmsvc.adapters import metrics
from mmsvc.config import load_or_exit

_settings = load_or_exit(os.environ)
# The workers inherit this: their series (mm_auth_disabled) go to the shared directory.
metrics.setup_multiprocess(_settings.prometheus_multiproc_dir)

_host = _settings.http_host
bind = [f"[{_host}]:{_settings.http_port}" if ":" in _host else f"{_host}:{_settings.http_port}"]
workers = int(os.environ.get("ADMIN_WORKERS", "2"))
worker_class = "gthread"
threads = int(os.environ.get("ADMIN_THREADS", "4"))
# A create waits up to 25 s for its worker to start, a kill up to 3 s for the
# supervisor and then up to 10 s for the Order Service to confirm no open order.
timeout = 60
graceful_timeout = 30
keepalive = 5
preload_app = False
accesslog = "-"
errorlog = "-"
loglevel = _settings.log_level.lower()
proc_name = "mmsvc-admin"
# gunicorn's runtime control socket lives in this instance's run directory, so
# two instances (make run and the tests) never share one.
control_socket = str(_settings.run_dir / "admin-gunicorn.ctl")
# The application's own records (actor, symbol, ...) as the service's JSON lines
# on stdout, secrets redacted (observability.logs); gunicorn's own loggers keep
# their plain format and do not repeat into root.
_plain = {"format": "%(asctime)s [%(process)d] [%(levelname)s] %(message)s"}
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "generic": _plain,
        "json": {
            "()": "mmsvc.observability.logs.JsonLogFormatter",
            "service": _settings.service_name,
            "process": "admin",
        },
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "generic",
            "stream": "ext://sys.stdout",
        },
        "error_console": {
            "class": "logging.StreamHandler",
            "formatter": "generic",
            "stream": "ext://sys.stderr",
        },
        "json": {
            "class": "logging.StreamHandler",
            "formatter": "json",
            "stream": "ext://sys.stdout",
        },
    },
    "loggers": {
        "gunicorn.error": {"level": "INFO", "handlers": ["error_console"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["console"], "propagate": False},
    },
    "root": {"level": _settings.log_level, "handlers": ["json"]},
}
