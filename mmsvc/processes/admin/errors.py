"""The admin API's one error shape: ``{"error": {"code", "message", "field"}}`` (+ ``state``)."""

from __future__ import annotations

import logging

from flask import Flask, Response
from pydantic import ConfigDict
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as WerkzeugResponse

from mmsvc.domain.model import SymbolState
from mmsvc.processes.admin.bodies import Body, StateName, respond

log = logging.getLogger(__name__)


class ErrorDetail(Body):
    """What went wrong: a code a program can test, a message a person reads, the field at fault."""

    code: str
    message: str
    field: str | None


class Error(Body):
    """Every answer other than success; ``state`` (the symbol's) only when it explains a 409."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=False)  # state: optional

    error: ErrorDetail
    state: StateName | None = None


class ApiError(Exception):
    """An answer other than success; ``field`` names the request field at fault, if any."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        state: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.state = state
        self.headers = headers or {}

    def body(self) -> Error:
        """The body of this error (``state`` left out, not null, when there is none)."""
        detail = ErrorDetail(code=self.code, message=self.message, field=self.field)
        if self.state is None:
            return Error(error=detail)
        return Error(error=detail, state=SymbolState(self.state))


def error_response(error: ApiError) -> Response:
    """The Flask response of an ApiError."""
    response = respond(error.body(), error.status)
    response.headers.update(error.headers)
    return response


def install(app: Flask) -> None:
    """Every error the app can raise answers in the one error shape, never as HTML."""

    @app.errorhandler(ApiError)
    def _api_error(error: ApiError) -> Response:
        return error_response(error)

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException) -> WerkzeugResponse:
        code = (error.name or "error").upper().replace(" ", "_")
        status = error.code or 500
        body = ApiError(status, code, error.description or code).body()
        response = error.get_response()
        response.set_data(respond(body).get_data())
        response.mimetype = "application/json"
        return response

    @app.errorhandler(OperationalError)
    def _database_down(error: OperationalError) -> Response:
        log.error("PostgreSQL unavailable: %s", type(error.orig).__name__)
        return error_response(ApiError(503, "DATABASE_UNAVAILABLE", "PostgreSQL is unavailable"))

    @app.errorhandler(Exception)
    def _unexpected(_error: Exception) -> Response:
        log.exception("unhandled error in the admin API")
        return error_response(ApiError(500, "INTERNAL", "internal error; see the admin log"))
