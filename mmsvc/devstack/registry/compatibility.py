"""The compatibility-level endpoints (/config): levels are stored but not enforced."""

from __future__ import annotations

from typing import Any

from mmsvc.devstack.registry.errors import RegistryError, subject_not_found
from mmsvc.devstack.registry.params import Params, Query, flag
from mmsvc.devstack.registry.store import SchemaStore

DEFAULT_COMPATIBILITY = "BACKWARD"
COMPATIBILITY_LEVELS = frozenset(
    {
        "NONE",
        "BACKWARD",
        "BACKWARD_TRANSITIVE",
        "FORWARD",
        "FORWARD_TRANSITIVE",
        "FULL",
        "FULL_TRANSITIVE",
    }
)
GLOBAL = ""  # the config row of the global compatibility level


def _level(body: Any) -> str:
    level = body.get("compatibility") if isinstance(body, dict) else None
    if not isinstance(level, str) or level.upper() not in COMPATIBILITY_LEVELS:
        raise RegistryError(422, 42203, f"Invalid compatibility level: {level}")
    return level.upper()


def get_config(store: SchemaStore, params: Params, query: Query, body: Any) -> Any:
    """GET /config and /config/{subject} (40408 when a subject has no level of its own)."""
    subject = params.get("subject", GLOBAL)
    level = store.compatibility(subject)
    if level is None and subject != GLOBAL and not flag(query, "defaultToGlobal"):
        raise RegistryError(
            404, 40408, f"Subject '{subject}' does not have subject-level compatibility configured"
        )
    if level is None:
        level = store.compatibility(GLOBAL) or DEFAULT_COMPATIBILITY
    return {"compatibilityLevel": level}


def put_config(store: SchemaStore, params: Params, query: Query, body: Any) -> Any:
    """PUT /config and /config/{subject}."""
    level = _level(body)
    store.set_compatibility(params.get("subject", GLOBAL), level)
    return {"compatibility": level}


def delete_config(store: SchemaStore, params: Params, query: Query, body: Any) -> Any:
    """DELETE /config and /config/{subject}: the level that was removed."""
    subject = params.get("subject", GLOBAL)
    old = store.compatibility(subject)
    if old is None and subject != GLOBAL:
        raise subject_not_found(subject)
    store.set_compatibility(subject, None)
    return {"compatibilityLevel": old or DEFAULT_COMPATIBILITY}
