"""Every component schema of the admin API's OpenAPI document.

Derived, never listed by hand (issue 11): the config schemas are the config
model's own JSON Schema (``mmsvc.domain.symbol_config``), which also validates
the requests; every response body is the JSON Schema of the model its view
builds (:mod:`bodies`). Only the small optional bodies of the kill, the reset
and the dead-letter clear, checked field by field in :mod:`validation`, are
written here.
"""

from __future__ import annotations

from typing import Any

from mmsvc.adapters.db.records import ConfigRecord
from mmsvc.domain.symbol_config import ConfigFields, MMConfig
from mmsvc.processes.admin import dead_letters
from mmsvc.processes.admin.bodies import response_components
from mmsvc.processes.admin.configs import ConfigList
from mmsvc.processes.admin.control_bodies import CommandSummary, KillResult, ResetResult
from mmsvc.processes.admin.errors import Error, ErrorDetail
from mmsvc.processes.admin.health import Checks, Health, Readiness
from mmsvc.processes.admin.json_schema import SYMBOL_SCHEMA, TEXT, closed, model_schema, nullable
from mmsvc.processes.admin.readiness import CheckResult
from mmsvc.processes.admin.status_bodies import STATUS_BODIES

RESPONSE_BODIES: dict[str, type] = {
    "Error": Error,
    "ErrorDetail": ErrorDetail,
    "Config": ConfigRecord,
    "ConfigList": ConfigList,
    **STATUS_BODIES,
    "KillResult": KillResult,
    "ResetResult": ResetResult,
    "CommandSummary": CommandSummary,
    "Health": Health,
    "Check": CheckResult,
    "Checks": Checks,
    "Readiness": Readiness,
    **dead_letters.DEAD_LETTER_BODIES,
}
"""Every response body, by its component name."""


def components() -> dict[str, dict[str, Any]]:
    """Every component schema of the OpenAPI document, by name."""
    return {
        # Generated from the config model itself (issue 11): no field is listed here.
        "ConfigCreate": model_schema(MMConfig),
        "ConfigUpdate": model_schema(ConfigFields),
        **response_components(RESPONSE_BODIES),
        "KillRequest": closed({"symbol": nullable(SYMBOL_SCHEMA), "reason": nullable(TEXT)}),
        "ResetRequest": closed({"symbol": nullable(SYMBOL_SCHEMA)}),
        **dead_letters.openapi_components(),
    }
