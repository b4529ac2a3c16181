"""Building blocks of the admin API's JSON Schemas (OpenAPI 3.0)."""

from __future__ import annotations

from typing import Any

from mmsvc.adapters.db.records import RiskTrigger, SymbolState
from mmsvc.domain.symbol_config import (
    DECIMAL_MAX_CHARS,
    SYMBOL_MAX,
    SYMBOL_PATTERN,
    Bounds,
    bounds,
    is_decimal,
)


def closed(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    """An object schema that allows no properties but ``properties``."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


def nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema``, also allowing null."""
    return {**schema, "nullable": True}


def ref(name: str) -> dict[str, str]:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


SYMBOL_SCHEMA = {"type": "string", "pattern": SYMBOL_PATTERN, "maxLength": SYMBOL_MAX}
DECIMAL = {"type": "string", "pattern": r"^-?[0-9]+(\.[0-9]+)?$"}
TIMESTAMP = {"type": "string", "format": "date-time"}
STATE_ENUM = {"type": "string", "enum": [s.value for s in SymbolState]}
TRIGGER_ENUM = {"type": "string", "enum": [t.value for t in RiskTrigger]}
SYMBOL_LIST = {"type": "array", "items": {"type": "string"}}
REASONS = {"type": "object", "additionalProperties": {"type": "string"}}


def _decimal_text(found: Bounds) -> str:
    """A regular expression of the unsigned decimal strings within ``found``.

    Only the shapes the model uses are written out: a low end of 0 (open or
    closed) and a high end of a power of ten, closed; another shape raises here,
    so a new field's bounds are never documented wrongly.
    """
    high = found.high
    if found.low != 0 or high is None or not found.high_inclusive:
        raise ValueError(f"no string pattern for bounds {found.text()}")
    power = len(str(int(high))) - 1
    if high != 10**power:
        raise ValueError(f"no string pattern for bounds {found.text()}")
    zero = r"0+(\.[0-9]+)?" if found.low_inclusive else r"0+\.[0-9]*[1-9][0-9]*"
    parts = [zero, rf"0*1{'0' * power}(\.0+)?"]
    if power > 0:
        parts.insert(1, rf"0*[1-9][0-9]{{0,{power - 1}}}(\.[0-9]+)?")
    return f"^({'|'.join(parts)})$"


def _number(found: Bounds) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "number"}
    if found.low is not None:
        schema["minimum"] = int(found.low)
        if not found.low_inclusive:
            schema["exclusiveMinimum"] = True
    if found.high is not None:
        schema["maximum"] = int(found.high)
    return schema


def config_property(name: str, *, request: bool) -> dict[str, Any]:
    """The JSON Schema of config field `name`, from the model's type and bounds."""
    found = bounds(name)
    if found is None:
        return {"type": "boolean"}
    if not is_decimal(name):
        integer = {"type": "integer", "minimum": int(found.low or 0)}
        return integer if found.high is None else {**integer, "maximum": int(found.high)}
    text = {"type": "string", "pattern": _decimal_text(found), "maxLength": DECIMAL_MAX_CHARS}
    if not request:
        return text
    description = f"decimal {found.text()}, as a string (preferred) or a number"
    return {"oneOf": [text, _number(found)], "description": description}
