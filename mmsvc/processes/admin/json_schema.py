"""Building blocks of the admin API's JSON Schemas (OpenAPI 3.0)."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

from mmsvc.adapters.db.records import RiskTrigger, SymbolState
from mmsvc.domain.symbol_config import SYMBOL_MAX, SYMBOL_PATTERN
from mmsvc.processes.admin.validation import REASON_MAX


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
    """``schema``, also allowing null (OpenAPI 3.1: JSON Schema's own way)."""
    return {"anyOf": [schema, {"type": "null"}]}


def model_schema(model: type, *, response: bool = False) -> dict[str, Any]:
    """The JSON Schema pydantic generates for `model`: of a request, or of a response."""
    schema: dict[str, Any] = TypeAdapter(model).json_schema(
        mode="serialization" if response else "validation"
    )
    return schema


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
TEXT = {"type": "string", "maxLength": REASON_MAX}  # an operator's reason (validation.py)
REQUIRED_TEXT = {**TEXT, "minLength": 1}
