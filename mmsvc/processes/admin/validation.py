"""The checks every admin request body goes through, raising ApiError with the field named.

A body that is not a JSON object, a field of the wrong type, an unknown field
or a missing required one is 400; a well-typed value that breaks a rule (range,
format) is 422; both name the field. Decimals are accepted as strings or JSON
numbers and are read from the JSON text straight into Decimal (never through a
float); responses carry them as strings (CONTRACTS.md "General rules").
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any

from mmsvc.processes.admin.errors import ApiError

SYMBOL_PATTERN = r"^[A-Z0-9]{2,16}(-[A-Z0-9]{2,16})?$"
SYMBOL_MAX = 32  # CONTRACTS.md: the pattern, and at most 32 characters
DECIMAL_MAX_CHARS = 64
REASON_MAX = 500
_SYMBOL = re.compile(SYMBOL_PATTERN)


class Rule(Enum):
    """A decimal field's range, with the regular expression that says it for strings."""

    NON_NEGATIVE = (">= 0", r"^[0-9]+(\.[0-9]+)?$")
    POSITIVE = ("> 0", r"^([0-9]*[1-9][0-9]*(\.[0-9]+)?|[0-9]+\.[0-9]*[1-9][0-9]*)$")
    # The worker keeps these two as whole milliseconds, so below 1 would read as 0.
    AT_LEAST_ONE = (">= 1", r"^0*[1-9][0-9]*(\.[0-9]+)?$")

    def __init__(self, text: str, pattern: str) -> None:
        self.text = text
        self.pattern = pattern

    def holds(self, value: Decimal) -> bool:
        """True when the value is in range."""
        if self is Rule.NON_NEGATIVE:
            return value >= 0
        if self is Rule.POSITIVE:
            return value > 0
        return value >= 1

    def number_schema(self) -> dict[str, Any]:
        """The JSON Schema (OpenAPI 3.0) of a JSON number in range."""
        if self is Rule.POSITIVE:
            return {"type": "number", "minimum": 0, "exclusiveMinimum": True}
        return {"type": "number", "minimum": 0 if self is Rule.NON_NEGATIVE else 1}


@dataclass(frozen=True, slots=True)
class Field:
    """One settable config field: its kind (decimal, boolean, integer) and its rule."""

    name: str
    kind: str
    rule: Rule | None = None
    minimum: int = 0
    maximum: int = 0


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def json_object(raw: bytes, *, optional: bool = False) -> dict[str, Any]:
    """The request body as a JSON object (numbers with a fraction as Decimal); 400 otherwise."""
    if optional and not raw.strip():
        return {}
    try:
        value = json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(400, "INVALID_JSON", f"the body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ApiError(400, "INVALID_JSON", "the body must be a JSON object")
    return value


def check_symbol(value: object, field: str = "symbol") -> str:
    """A symbol of CONTRACTS.md's format: 400 when not a string, 422 when malformed."""
    if not isinstance(value, str):
        raise ApiError(400, "INVALID_TYPE", f"{field} must be a string", field=field)
    if len(value) > SYMBOL_MAX or not _SYMBOL.fullmatch(value):
        raise ApiError(
            422,
            "INVALID_FORMAT",
            f"{field} must match {SYMBOL_PATTERN} and be at most {SYMBOL_MAX} characters",
            field=field,
        )
    return value


def reject_unknown(body: Mapping[str, Any], allowed: set[str]) -> None:
    """400 UNKNOWN_FIELD, naming the first field (by name) that is not ``allowed``."""
    for name in sorted(set(body) - allowed):
        raise ApiError(400, "UNKNOWN_FIELD", f"{name} is not a field of this request", field=name)


def _decimal(field: Field, value: object) -> Decimal:
    if field.rule is None:
        raise TypeError(f"{field.name}: a decimal field without a rule")
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ApiError(
            400,
            "INVALID_TYPE",
            f"{field.name} must be a decimal string or a number",
            field=field.name,
        )
    if isinstance(value, str) and (
        len(value) > DECIMAL_MAX_CHARS or not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", value)
    ):
        raise ApiError(
            422,
            "INVALID_FORMAT",
            f'{field.name} must be a plain decimal string such as "10.5"',
            field=field.name,
        )
    try:
        number = value if isinstance(value, Decimal) else Decimal(value)
    except InvalidOperation:
        raise ApiError(
            422, "INVALID_FORMAT", f"{field.name} is not a decimal", field=field.name
        ) from None
    if not number.is_finite() or not field.rule.holds(number):
        raise ApiError(
            422, "OUT_OF_RANGE", f"{field.name} must be {field.rule.text}", field=field.name
        )
    return number


def _integer(field: Field, value: object) -> int:
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral():
        value = int(value)  # 5.0 in JSON is the integer 5
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(400, "INVALID_TYPE", f"{field.name} must be an integer", field=field.name)
    number = value
    if not field.minimum <= number <= field.maximum:
        raise ApiError(
            422,
            "OUT_OF_RANGE",
            f"{field.name} must be between {field.minimum} and {field.maximum}",
            field=field.name,
        )
    return number


def _boolean(field: Field, value: object) -> bool:
    if not isinstance(value, bool):
        raise ApiError(400, "INVALID_TYPE", f"{field.name} must be true or false", field=field.name)
    return value


def check_field(field: Field, value: object) -> Decimal | int | bool:
    """The value of one field, checked against its kind and rule."""
    if field.kind == "decimal":
        return _decimal(field, value)
    if field.kind == "integer":
        return _integer(field, value)
    return _boolean(field, value)


def optional_text(body: Mapping[str, Any], name: str) -> str | None:
    """An optional string field of at most REASON_MAX characters, None when absent."""
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ApiError(400, "INVALID_TYPE", f"{name} must be a string", field=name)
    if len(value) > REASON_MAX:
        raise ApiError(
            422, "OUT_OF_RANGE", f"{name} must be at most {REASON_MAX} characters", field=name
        )
    return value
