"""Path parameters, query flags and paging of the registry's requests."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmsvc.devstack.registry.errors import RegistryError, schema_not_found

Query = Mapping[str, str]
Params = Mapping[str, str]

MAX_VERSION = 2**31 - 1


def flag(query: Query, name: str) -> bool:
    """A boolean query parameter: true only when it reads ``true`` (any case)."""
    return query.get(name, "false").lower() == "true"


def page(items: list[Any], query: Query) -> list[Any]:
    """The ``offset`` / ``limit`` page of ``items``; 400 when either is not a number."""
    try:
        offset = max(int(query.get("offset") or 0), 0)
        limit = int(query.get("limit") or -1)
    except ValueError as exc:
        raise RegistryError(400, 400, f"Bad offset or limit: {exc}") from exc
    return items[offset:] if limit < 0 else items[offset : offset + limit]


def parse_version(raw: str) -> int | None:
    """A version id, or None for ``latest`` / ``-1``; raises 42202 otherwise."""
    if raw in ("latest", "-1"):
        return None
    if raw.isdigit() and 1 <= int(raw) <= MAX_VERSION:
        return int(raw)
    raise RegistryError(
        422,
        42202,
        f"The specified version '{raw}' is not a valid version id. Allowed values are "
        f'between [1, {MAX_VERSION}] and the string "latest"',
    )


def parse_schema_id(raw: str) -> int:
    """A schema id from the path; 40403 when it is not a number."""
    if not raw.isdigit():
        raise schema_not_found(raw)
    return int(raw)
