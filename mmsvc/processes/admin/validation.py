"""The checks every admin request body goes through, raising ApiError with the field named.

A body that is not a JSON object, a field of the wrong type, an unknown or a
missing field, or a value outside its format or bounds is 400 naming the field
(issue 11 moved range errors from 422 to 400). Config bodies are checked by the
config model itself (``mmsvc.domain.symbol_config``). Decimals are accepted as
strings or JSON numbers and are read from the JSON text straight into Decimal
(never through a float); responses carry them as strings (CONTRACTS.md).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, TypeVar

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from mmsvc.domain.symbol_config import CONFIG_FIELDS, SYMBOL_MAX, SYMBOL_PATTERN, bounds
from mmsvc.processes.admin.errors import ApiError

T = TypeVar("T")
# One bound for every free-text reason an operator writes (kill, dead-letter clear):
# mm_state.reason and mm_dead_letters.clear_reason are TEXT, so this is a sanity ceiling.
REASON_MAX = 1000
_SYMBOL = re.compile(SYMBOL_PATTERN)


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
    """A symbol of CONTRACTS.md's format: 400 when not a string or malformed."""
    if not isinstance(value, str):
        raise ApiError(400, "INVALID_TYPE", f"{field} must be a string", field=field)
    if len(value) > SYMBOL_MAX or not _SYMBOL.fullmatch(value):
        raise ApiError(
            400,
            "INVALID_FORMAT",
            f"{field} must match {SYMBOL_PATTERN} and be at most {SYMBOL_MAX} characters",
            field=field,
        )
    return value


def reject_unknown(body: Mapping[str, Any], allowed: set[str]) -> None:
    """400 UNKNOWN_FIELD, naming the first field (by name) that is not ``allowed``."""
    for name in sorted(set(body) - allowed):
        raise ApiError(400, "UNKNOWN_FIELD", f"{name} is not a field of this request", field=name)


def validated(model: Callable[..., T], body: Mapping[str, Any]) -> T:
    """``model(**body)``, or 400 naming the first field at fault and its rule or bounds."""
    try:
        return model(**body)
    except ValidationError as exc:
        raise _api_error(min(exc.errors(), key=_priority)) from None


# Unknown, then missing fields, then the rest, each in the model's field order.
_UNKNOWN = "unexpected_keyword_argument"
_MISSING = {"missing", "missing_argument", "missing_keyword_only_argument"}
_FORMAT = {"invalid_format", "string_pattern_mismatch", "string_too_long"}


def _priority(error: ErrorDetails) -> int:
    return 0 if error["type"] == _UNKNOWN else 1 if error["type"] in _MISSING else 2


def _api_error(error: ErrorDetails) -> ApiError:
    name = str(error["loc"][0]) if error["loc"] else None
    kind = error["type"]
    if kind == _UNKNOWN:
        return ApiError(400, "UNKNOWN_FIELD", f"{name} is not a field of this request", field=name)
    if kind in _MISSING:
        return ApiError(400, "MISSING_FIELD", f"{name} is required", field=name)
    # Anything else names the field, what is wrong and, for a config field, its bounds.
    found = None if name not in CONFIG_FIELDS else bounds(name)
    allowed = "" if found is None else f" (allowed: {found.text()})"
    message = f"{name}: {error['msg']}{allowed}"
    if kind in _FORMAT:
        return ApiError(400, "INVALID_FORMAT", message, field=name)
    if kind.endswith("_type") or kind == "invalid_type":
        return ApiError(400, "INVALID_TYPE", message, field=name)
    return ApiError(400, "OUT_OF_RANGE", message, field=name)


def optional_text(body: Mapping[str, Any], name: str) -> str | None:
    """An optional string field of at most REASON_MAX characters, None when absent."""
    value = body.get(name)
    return None if value is None else _text(value, name)


def required_text(body: Mapping[str, Any], name: str) -> str:
    """A string field that must be present and not blank, of at most REASON_MAX characters."""
    if name not in body:
        raise ApiError(400, "MISSING_FIELD", f"{name} is required", field=name)
    value = _text(body[name], name)
    if not value.strip():
        raise ApiError(400, "OUT_OF_RANGE", f"{name} must not be blank", field=name)
    return value


def _text(value: object, name: str) -> str:
    if not isinstance(value, str):
        raise ApiError(400, "INVALID_TYPE", f"{name} must be a string", field=name)
    if len(value) > REASON_MAX:
        raise ApiError(
            400, "OUT_OF_RANGE", f"{name} must be at most {REASON_MAX} characters", field=name
        )
    return value
