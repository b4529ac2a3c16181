"""Rows of a subject's versions and of schemas, as the store's operations read them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from mmsvc.devstack.registry.errors import version_not_found


@dataclass(frozen=True, slots=True)
class VersionRow:
    """One version of a subject."""

    version: int
    schema_id: int
    deleted: bool


Cursor = psycopg.Cursor[tuple[Any, ...]]


def versions_of(cur: Cursor, subject: str) -> list[VersionRow]:
    """Every version of ``subject``, deleted or not, oldest first."""
    cur.execute(
        "SELECT version, schema_id, deleted FROM schema_registry.subject_versions"
        " WHERE subject = %s ORDER BY version",
        (subject,),
    )
    return [VersionRow(int(v), int(s), bool(d)) for v, s, d in cur.fetchall()]


def visible(rows: list[VersionRow], *, deleted: bool) -> list[VersionRow]:
    """The rows, less the soft-deleted ones unless ``deleted``."""
    return rows if deleted else [row for row in rows if not row.deleted]


def pick_version(rows: list[VersionRow], version: int | None) -> VersionRow:
    """The row of ``version`` (None: the latest); 40402 if absent."""
    if version is None:
        return rows[-1]
    for row in rows:
        if row.version == version:
            return row
    raise version_not_found(version)


def find_schema(cur: Cursor, where: str, value: object) -> tuple[int, str, str, str] | None:
    """(id, text, type, guid) of the schema matching ``where``, or None."""
    cur.execute(
        f"SELECT id, schema_text, schema_type, guid FROM schema_registry.schemas WHERE {where}",  # noqa: S608 - fixed column names only
        (value,),
    )
    row = cur.fetchone()
    return None if row is None else (int(row[0]), str(row[1]), str(row[2]), str(row[3]))
