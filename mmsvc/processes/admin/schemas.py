"""Every component schema of the admin API's OpenAPI document.

The config schemas are the config model's own JSON Schema, as pydantic
generates it (``mmsvc.domain.symbol_config``): the same model validates the
requests, so the document and the validation cannot drift (issue 11).
"""

from __future__ import annotations

from typing import Any

from mmsvc.adapters.db.records import ConfigRecord
from mmsvc.domain.symbol_config import ConfigFields, MMConfig
from mmsvc.processes.admin import health
from mmsvc.processes.admin.json_schema import (
    REASONS,
    STATE_ENUM,
    SYMBOL_LIST,
    SYMBOL_SCHEMA,
    TEXT,
    closed,
    model_schema,
    nullable,
    ref,
)
from mmsvc.processes.admin.status_schemas import status_components


def _error() -> dict[str, Any]:
    """The one error shape of errors.ApiError.body()."""
    properties = {
        "code": {"type": "string"},
        "message": {"type": "string"},
        "field": nullable({"type": "string"}),
    }
    return closed({"error": closed(properties, list(properties)), "state": STATE_ENUM}, ["error"])


def _reset_result() -> dict[str, Any]:
    properties = {
        "reset": SYMBOL_LIST,
        "refused": REASONS,
        "no_answer": SYMBOL_LIST,
        "global_flag_cleared": {"type": "boolean"},
        "reason": nullable({"type": "string"}),
    }
    return closed(properties, list(properties))


def _command_summary() -> dict[str, Any]:
    properties = {"ok": SYMBOL_LIST, "refused": REASONS, "no_answer": SYMBOL_LIST}
    return closed(properties, list(properties))


def _kill_result() -> dict[str, Any]:
    properties = {
        "scope": {"type": "string", "enum": ["ALL", "SYMBOL"]},
        "symbol": nullable({"type": "string"}),
        "handled_by": {"type": "string", "enum": ["supervisor", "admin"]},
        "kill_switch_active": {"type": "boolean"},
        "halted": SYMBOL_LIST,
        "no_answer": SYMBOL_LIST,
        "orders_flat": nullable({"type": "boolean"}),
    }
    return closed(properties, sorted(properties))


def _check() -> dict[str, Any]:
    properties = {
        "ok": {"type": "boolean"},
        "error": nullable({"type": "string"}),
        "latency_ms": nullable({"type": "number"}),  # null: no answer yet, or none for too long
        "age_s": nullable({"type": "number"}),  # seconds since the cached answer; null: none yet
    }
    return closed(properties, sorted(properties))


def components() -> dict[str, dict[str, Any]]:
    """Every component schema of the OpenAPI document, by name."""
    checks = list(health.CHECKS)
    return {
        "Error": _error(),
        # Generated from the config model itself (issue 11): no field is listed here.
        "ConfigCreate": model_schema(MMConfig),
        "ConfigUpdate": model_schema(ConfigFields),
        "Config": model_schema(ConfigRecord, response=True),
        "ConfigList": closed({"configs": {"type": "array", "items": ref("Config")}}, ["configs"]),
        **status_components(),
        "KillRequest": closed(
            {
                "symbol": nullable(SYMBOL_SCHEMA),
                "reason": nullable(TEXT),
            }
        ),
        "KillResult": _kill_result(),
        "ResetRequest": closed({"symbol": nullable(SYMBOL_SCHEMA)}),
        "ResetResult": _reset_result(),
        "CommandSummary": _command_summary(),
        "Health": closed({"status": {"type": "string", "enum": ["alive"]}}, ["status"]),
        "Check": _check(),
        "Readiness": closed(
            {
                "ready": {"type": "boolean"},
                "down": {"type": "array", "items": {"type": "string", "enum": checks}},
                "checks": closed({name: ref("Check") for name in checks}, checks),
            },
            ["ready", "down", "checks"],
        ),
    }
