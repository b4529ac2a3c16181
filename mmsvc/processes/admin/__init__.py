"""The admin process: the REST API operators steer the service with (Flask under gunicorn)."""

from mmsvc.processes.admin.app import create_app

__all__ = ["create_app"]
