"""mm_configs' config columns and CHECK constraints, generated from the config model (issue 11).

The model (``mmsvc.domain.symbol_config``) is the one definition of a field's
type, default and bounds; this module says it in SQL. Migrations are written
out literally (they must keep meaning what they meant); a test compares the
migrated database's constraints with :func:`config_checks` so they cannot drift.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, Integer, Numeric, text
from sqlalchemy.orm import MappedColumn, mapped_column
from sqlalchemy.types import TypeEngine

from mmsvc.domain.symbol_config import (
    CONFIG_FIELDS,
    MAX_DIGITS,
    MAX_SCALE,
    bounds,
    field_info,
    is_decimal,
)

_SQL_TYPES: dict[type, type[TypeEngine[Any]]] = {bool: Boolean, int: Integer, Decimal: Numeric}


def _default_sql(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def config_columns() -> dict[str, MappedColumn[Any]]:
    """One NOT NULL column per config field: its SQL type and the model's default."""
    columns: dict[str, MappedColumn[Any]] = {}
    for name in CONFIG_FIELDS:
        info = field_info(name)
        sql_type = _SQL_TYPES[info.annotation]  # type: ignore[index]
        columns[name] = mapped_column(
            name, sql_type(), nullable=False, server_default=text(_default_sql(info.default))
        )
    return columns


def digits_sql(column: str) -> str:
    """SQL true when `column` has at most MAX_DIGITS significant digits and MAX_SCALE places."""
    significant = f"length(ltrim(replace(abs({column})::text, '.', ''), '0'))"
    return f"scale({column}) <= {MAX_SCALE} AND {significant} <= {MAX_DIGITS}"


def bounds_sql(name: str) -> str | None:
    """SQL true when the column of config field `name` is within the model's bounds."""
    found = bounds(name)
    if found is None:
        return None
    parts = []
    if found.low is not None:
        parts.append(f"{name} {'>=' if found.low_inclusive else '>'} {found.low}")
    if found.high is not None:
        parts.append(f"{name} {'<=' if found.high_inclusive else '<'} {found.high}")
    if is_decimal(name):
        parts.append(digits_sql(name))
    return " AND ".join(parts)


def config_checks() -> list[CheckConstraint]:
    """A CHECK ``ck_mm_configs_<field>_bounds`` for every numeric config field."""
    checks = []
    for name in CONFIG_FIELDS:
        condition = bounds_sql(name)
        if condition is not None:
            checks.append(CheckConstraint(condition, name=f"{name}_bounds"))
    return checks
