"""The WSGI entry point of the admin API: ``mmsvc.processes.admin.wsgi:app`` for gunicorn."""

from __future__ import annotations

from mmsvc.processes.admin.app import create_app

app = create_app()
