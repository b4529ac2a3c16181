"""Building blocks of the admin API's request schemas (OpenAPI 3.1); responses: :mod:`bodies`."""

from __future__ import annotations

from typing import Any

from pydantic import TypeAdapter

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


def model_schema(model: type) -> dict[str, Any]:
    """The JSON Schema pydantic generates for `model` as a request body."""
    schema: dict[str, Any] = TypeAdapter(model).json_schema(mode="validation")
    return schema


def ref(name: str) -> dict[str, str]:
    """A reference to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


SYMBOL_SCHEMA = {"type": "string", "pattern": SYMBOL_PATTERN, "maxLength": SYMBOL_MAX}
TEXT = {"type": "string", "maxLength": REASON_MAX}  # an operator's reason (validation.py)
REQUIRED_TEXT = {**TEXT, "minLength": 1}
