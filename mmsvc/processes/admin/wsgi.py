"""The WSGI entry point of the admin API: ``mmsvc.processes.admin.wsgi:app`` for gunicorn.

gunicorn imports it in each worker after the fork (no preload), so tracing's
export thread belongs to the worker that records the spans.
"""

from __future__ import annotations

import os

from mmsvc.config import load_or_exit
from mmsvc.observability.tracing import configure_tracing
from mmsvc.processes.admin.app import create_app

_settings = load_or_exit(os.environ)
configure_tracing(_settings.service_name, _settings.otlp_endpoint)
app = create_app(_settings)
