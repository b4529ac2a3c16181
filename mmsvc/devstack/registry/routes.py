"""The routing table: (method, path pattern) to endpoint, with 404 and 405 answers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from mmsvc.devstack.registry.compatibility import delete_config, get_config, put_config
from mmsvc.devstack.registry.endpoints import (
    delete_subject,
    delete_version,
    get_contexts,
    get_mode,
    get_referenced_by,
    get_root,
    get_schema,
    get_schema_by_guid,
    get_schema_subjects,
    get_schema_text,
    get_schema_types,
    get_schema_versions,
    get_subjects,
    get_version,
    get_version_text,
    get_versions,
    lookup,
    register,
)
from mmsvc.devstack.registry.errors import RegistryError
from mmsvc.devstack.registry.params import Params, Query
from mmsvc.devstack.registry.store import SchemaStore

Endpoint = Callable[[SchemaStore, Params, Query, Any], Any]


ROUTES: dict[tuple[str, tuple[str, ...]], Endpoint] = {
    ("GET", ()): get_root,
    ("GET", ("contexts",)): get_contexts,
    ("GET", ("schemas", "types")): get_schema_types,
    ("GET", ("schemas", "ids", "{id}")): get_schema,
    ("GET", ("schemas", "ids", "{id}", "schema")): get_schema_text,
    ("GET", ("schemas", "ids", "{id}", "subjects")): get_schema_subjects,
    ("GET", ("schemas", "ids", "{id}", "versions")): get_schema_versions,
    ("GET", ("schemas", "guids", "{guid}")): get_schema_by_guid,
    ("GET", ("subjects",)): get_subjects,
    ("POST", ("subjects", "{subject}")): lookup,
    ("DELETE", ("subjects", "{subject}")): delete_subject,
    ("GET", ("subjects", "{subject}", "versions")): get_versions,
    ("POST", ("subjects", "{subject}", "versions")): register,
    ("GET", ("subjects", "{subject}", "versions", "{version}")): get_version,
    ("DELETE", ("subjects", "{subject}", "versions", "{version}")): delete_version,
    ("GET", ("subjects", "{subject}", "versions", "{version}", "schema")): get_version_text,
    ("GET", ("subjects", "{subject}", "versions", "{version}", "referencedby")): (
        get_referenced_by
    ),
    ("GET", ("config",)): get_config,
    ("PUT", ("config",)): put_config,
    ("DELETE", ("config",)): delete_config,
    ("GET", ("config", "{subject}")): get_config,
    ("PUT", ("config", "{subject}")): put_config,
    ("DELETE", ("config", "{subject}")): delete_config,
    ("GET", ("mode",)): get_mode,
    ("GET", ("mode", "{subject}")): get_mode,
}


def route(method: str, segments: Sequence[str]) -> tuple[Endpoint, dict[str, str]]:
    """The endpoint and path parameters of a request; 404 or 405 if there is none."""
    path_matched = False
    for (verb, pattern), endpoint in ROUTES.items():
        params = _match(pattern, segments)
        if params is None:
            continue
        if verb == method:
            return endpoint, params
        path_matched = True
    if path_matched:
        raise RegistryError(405, 405, "HTTP 405 Method Not Allowed")
    raise RegistryError(404, 404, "HTTP 404 Not Found")


def _match(pattern: tuple[str, ...], segments: Sequence[str]) -> dict[str, str] | None:
    if len(pattern) != len(segments):
        return None
    params: dict[str, str] = {}
    for part, segment in zip(pattern, segments, strict=True):
        if part.startswith("{"):
            params[part[1:-1]] = segment
        elif part != segment:
            return None
    return params
