"""The Flask application factory of the admin API."""

from __future__ import annotations

import logging
import os

from flask import Flask, Response, jsonify

from mmsvc.config import Settings, load_or_exit
from mmsvc.observability.tracing import instrument_flask
from mmsvc.processes.admin import configs, control, dead_letters, errors, health, openapi, status
from mmsvc.processes.admin.context import EXTENSION, build

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Flask:
    """The admin app on `settings` (read from the environment when None), its adapters ready."""
    settings = settings if settings is not None else load_or_exit(os.environ)
    app = Flask("mmsvc.admin")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions[EXTENSION] = build(settings)
    instrument_flask(app)  # server spans when tracing is on (wsgi.py turns it on)
    errors.install(app)
    health.start_probes(app.extensions[EXTENSION])  # /readyz reads what they cache (D25)
    for blueprint in (configs.bp, control.bp, status.bp, health.bp, dead_letters.bp):
        app.register_blueprint(blueprint)
    document = openapi.document()

    @app.get("/openapi.json")
    def openapi_json() -> Response:
        """The OpenAPI 3 document of this API."""
        return jsonify(document)

    log.info(
        "admin API ready",
        extra={"control_endpoint": settings.control_endpoint, "auth": not settings.disable_auth},
    )
    return app
