"""The OpenAPI 3 document of the admin API, exactly as served (GET /openapi.json).

Every status an operation can answer is listed with its body's schema; every
object schema forbids unknown properties (D21). The schemas are derived
(:mod:`schemas`, issue 11): the config's from the model that validates the
requests, each response's from the model its view builds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmsvc import __version__
from mmsvc.adapters.auth import Role
from mmsvc.processes.admin import dead_letters
from mmsvc.processes.admin.json_schema import SYMBOL_SCHEMA, ref
from mmsvc.processes.admin.schemas import components

_DESCRIPTIONS = {
    200: "OK",
    201: "Created",
    204: "Deleted",
    400: "Refused request: not a JSON object, wrong type, unknown or missing field, "
    "or a value outside its format or bounds (the body names the field and the bounds)",
    401: "No Authorization: Bearer header, or the token is not active",
    403: "The token lacks the role this call needs",
    404: "No such symbol",
    409: "Refused in the current state (the body says why, with the state)",
    502: "The supervisor or a worker gave an answer outside the protocol",
    503: "The supervisor (or the Auth Service) cannot be reached, a worker did not answer, "
    "or the symbol is moving between hosts (MOVING)",
}
_AUTHED = (401, 403, 503)
_SYMBOL_PARAM = {
    "name": "symbol",
    "in": "path",
    "required": True,
    "schema": SYMBOL_SCHEMA,
}
_WRITE = (400,)
_CONTROL = (400, 404, 409, 502)


def _json(schema: str) -> dict[str, Any]:
    return {"application/json": {"schema": ref(schema)}}


def _response(status: int, schema: str | None) -> dict[str, Any]:
    response: dict[str, Any] = {"description": _DESCRIPTIONS[status]}
    if schema is not None:
        response["content"] = _json(schema)
    if status == 401:
        response["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    return response


def _operation(
    operation_id: str,
    summary: str,
    role: Role | None,
    ok: Mapping[int, str | None],
    errors: tuple[int, ...] = (),
    *,
    body: str | None = None,
    body_required: bool = True,
    symbol: bool = False,
) -> dict[str, Any]:
    responses = {str(s): _response(s, schema) for s, schema in ok.items()}
    for status in (*errors, *(_AUTHED if role is not None else ())):
        responses[str(status)] = _response(status, "Error")
    operation: dict[str, Any] = {
        "operationId": operation_id,
        "summary": summary,
        "responses": dict(sorted(responses.items())),
    }
    if role is not None:
        operation["security"] = [{"bearer": []}]
        operation["description"] = f"Needs the role {role.wire} (mm:admin implies every role)."
    else:
        operation["security"] = []
    if symbol:
        operation["parameters"] = [_SYMBOL_PARAM]
    if body is not None:
        operation["requestBody"] = {"required": body_required, "content": _json(body)}
    return operation


def _paths() -> dict[str, dict[str, Any]]:
    admin, operate, read = Role.ADMIN, Role.OPERATE, Role.READ
    control = {200: "SymbolState"}
    return {
        "/v1/mm-configs": {
            "get": _operation("listConfigs", "List every config", read, {200: "ConfigList"}),
            "post": _operation(
                "createConfig",
                "Create a config; its PAUSED worker is running when this answers 201",
                admin,
                {201: "Config"},
                (*_WRITE, 409, 502),
                body="ConfigCreate",
            ),
        },
        "/v1/mm-configs/{symbol}": {
            "get": _operation(
                "getConfig", "Get a config", read, {200: "Config"}, (400, 404), symbol=True
            ),
            "put": _operation(
                "updateConfig",
                "Update a config; the running worker applies it without a restart",
                admin,
                {200: "Config"},
                (*_WRITE, 404, 409, 502),
                body="ConfigUpdate",
                symbol=True,
            ),
            "delete": _operation(
                "deleteConfig",
                "Delete a config; refused while ACTIVE, HALTED or with open orders",
                admin,
                {204: None},
                _CONTROL,
                symbol=True,
            ),
        },
        "/v1/mm-configs/{symbol}/enable": {
            "post": _operation(
                "enable", "enabled=true, PAUSED -> ACTIVE", operate, control, _CONTROL, symbol=True
            )
        },
        "/v1/mm-configs/{symbol}/pause": {
            "post": _operation(
                "pause",
                "ACTIVE -> PAUSED, orders canceled",
                operate,
                control,
                _CONTROL,
                symbol=True,
            )
        },
        "/v1/mm-configs/{symbol}/resume": {
            "post": _operation(
                "resume", "PAUSED -> ACTIVE (enabled only)", operate, control, _CONTROL, symbol=True
            )
        },
        "/v1/mm-configs/{symbol}/status": {
            "get": _operation(
                "symbolStatus",
                "Config, state, position, open orders, P&L, last quote and data age",
                read,
                {200: "SymbolStatus"},
                (400, 404),
                symbol=True,
            )
        },
        "/v1/mm/status": {
            "get": _operation(
                "overallStatus",
                "Every symbol, totals and the kill switch",
                read,
                {200: "OverallStatus"},
            )
        },
        "/v1/mm/emergency/kill": {
            "post": _operation(
                "emergencyKill",
                "Kill every symbol (or the one named); works with the supervisor down",
                admin,
                {200: "KillResult"},
                (*_WRITE, 404),
                body="KillRequest",
                body_required=False,
            )
        },
        "/v1/mm/emergency/flatten": {
            "post": _operation(
                "emergencyFlatten",
                "Cancel every order on every symbol and pause every ACTIVE one",
                admin,
                {200: "CommandSummary"},
                (502,),
            )
        },
        "/v1/mm/reset": {
            "post": _operation(
                "reset",
                "HALTED -> PAUSED where the trigger's condition is gone; 409 when none was reset",
                admin,
                {200: "ResetResult", 409: "ResetResult"},
                (*_WRITE, 404, 502),
                body="ResetRequest",
                body_required=False,
            )
        },
        "/healthz": {"get": _operation("healthz", "The process answers", None, {200: "Health"})},
        "/openapi.json": {"get": _document_operation()},
        "/readyz": {
            "get": _operation(
                "readyz",
                "PostgreSQL, Redis, Kafka and the supervisor answer",
                None,
                {200: "Readiness", 503: "Readiness"},
            )
        },
    }


def _document_operation() -> dict[str, Any]:
    operation = _operation("openapi", "This document", None, {200: None})
    operation["responses"]["200"]["content"] = {"application/json": {"schema": {"type": "object"}}}
    return operation


def document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document (its schemas are JSON Schema 2020-12, as pydantic writes)."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "mmsvc admin API",
            "version": __version__,
            "description": "Configure and control the TradeX market maker. "
            "Decimals are strings; errors are {error: {code, message, field}}.",
        },
        "paths": {**_paths(), **dead_letters.openapi_paths(_operation)},
        "components": {
            "schemas": components(),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }
