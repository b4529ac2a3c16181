"""Every request and response shape of the admin API, as validators and as JSON Schema.

One definition per field serves both the request validation and the OpenAPI
document, so the two cannot drift. Requests: a body that is not a JSON object,
a field of the wrong type, an unknown field or a missing required one is 400;
a well-typed value that breaks a rule (range, format) is 422; both name the
field. Decimals are accepted as strings or JSON numbers and are read from the
JSON text straight into Decimal (never through a float); responses carry them
as strings (CONTRACTS.md "General rules").
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum
from typing import Any, cast

from mmsvc.adapters.db.records import ConfigFields, RiskTrigger, SymbolState
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


CONFIG_SPEC: tuple[Field, ...] = (
    Field("enabled", "boolean"),
    Field("base_spread_bps", "decimal", Rule.POSITIVE),
    Field("order_size_usdt", "decimal", Rule.POSITIVE),
    Field("inventory_skew_factor", "decimal", Rule.NON_NEGATIVE),
    Field("max_position_usdt", "decimal", Rule.POSITIVE),
    Field("max_loss_usdt", "decimal", Rule.NON_NEGATIVE),
    Field("volatility_multiplier", "boolean"),
    Field("num_levels", "integer", minimum=1, maximum=100),
    Field("level_spacing_bps", "decimal", Rule.NON_NEGATIVE),
    Field("check_staleness", "boolean"),
    Field("staleness_threshold_ms", "decimal", Rule.AT_LEAST_ONE),
    Field("quote_interval_ms", "decimal", Rule.AT_LEAST_ONE),
    Field("price_threshold_bps", "decimal", Rule.NON_NEGATIVE),
)
_BY_NAME = {f.name: f for f in CONFIG_SPEC}


# ----------------------------------------------------------------- requests


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


def _unknown(body: Mapping[str, Any], allowed: set[str]) -> None:
    for name in sorted(set(body) - allowed):
        raise ApiError(400, "UNKNOWN_FIELD", f"{name} is not a field of this request", field=name)


def _decimal(field: Field, value: object) -> Decimal:
    assert field.rule is not None
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


def config_fields(body: Mapping[str, Any], *, extra: set[str] | None = None) -> ConfigFields:
    """The config fields of a request body, each checked against its rule."""
    _unknown(body, set(_BY_NAME) | (extra or set()))
    parsed: dict[str, Any] = {}
    for name, value in body.items():
        field = _BY_NAME.get(name)
        if field is None:
            continue
        if field.kind == "decimal":
            parsed[name] = _decimal(field, value)
        elif field.kind == "integer":
            parsed[name] = _integer(field, value)
        else:
            parsed[name] = _boolean(field, value)
    return cast(ConfigFields, parsed)


def config_create(body: Mapping[str, Any]) -> tuple[str, ConfigFields]:
    """POST /v1/mm-configs: a symbol and any config fields (the rest take the defaults)."""
    fields = config_fields(body, extra={"symbol"})
    if "symbol" not in body:
        raise ApiError(400, "MISSING_FIELD", "symbol is required", field="symbol")
    return check_symbol(body["symbol"]), fields


def _optional_text(body: Mapping[str, Any], name: str) -> str | None:
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


@dataclass(frozen=True, slots=True)
class KillRequest:
    """POST /v1/mm/emergency/kill: every symbol, or the one named."""

    symbol: str | None
    reason: str | None


def kill_request(body: Mapping[str, Any]) -> KillRequest:
    """The optional kill body {symbol?, reason?}."""
    _unknown(body, {"symbol", "reason"})
    symbol = body.get("symbol")
    return KillRequest(
        None if symbol is None else check_symbol(symbol), _optional_text(body, "reason")
    )


def reset_request(body: Mapping[str, Any]) -> str | None:
    """The optional reset body {symbol?}: the symbol, or None for every HALTED symbol."""
    _unknown(body, {"symbol"})
    symbol = body.get("symbol")
    return None if symbol is None else check_symbol(symbol)


# ------------------------------------------------------------- JSON Schema


def _closed(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        schema["required"] = required
    return schema


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
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


def _request_field(field: Field) -> dict[str, Any]:
    if field.kind == "boolean":
        return {"type": "boolean"}
    if field.kind == "integer":
        return {"type": "integer", "minimum": field.minimum, "maximum": field.maximum}
    assert field.rule is not None
    text = {"type": "string", "pattern": field.rule.pattern, "maxLength": DECIMAL_MAX_CHARS}
    return {
        "oneOf": [text, field.rule.number_schema()],
        "description": f"decimal {field.rule.text}, as a string (preferred) or a number",
    }


def _response_field(field: Field) -> dict[str, Any]:
    return {"decimal": DECIMAL, "integer": {"type": "integer"}}.get(field.kind, {"type": "boolean"})


def _config_request(with_symbol: bool) -> dict[str, Any]:
    properties = {f.name: _request_field(f) for f in CONFIG_SPEC}
    if with_symbol:
        return _closed({"symbol": SYMBOL_SCHEMA, **properties}, ["symbol"])
    return _closed(properties)


def _error() -> dict[str, Any]:
    detail = _closed(
        {
            "code": {"type": "string"},
            "message": {"type": "string"},
            "field": _nullable({"type": "string"}),
        },
        ["code", "message", "field"],
    )
    return _closed({"error": detail, "state": STATE_ENUM}, ["error"])


def _symbol_state() -> dict[str, Any]:
    return _closed(
        {
            "symbol": {"type": "string"},
            "enabled": {"type": "boolean"},
            "state": STATE_ENUM,
            "trigger": _nullable(TRIGGER_ENUM),
            "trigger_detail": _nullable({"type": "string"}),
            "reason": {"type": "string"},
            "actor": {"type": "string"},
            "updated_at": TIMESTAMP,
        },
        [
            "symbol",
            "enabled",
            "state",
            "trigger",
            "trigger_detail",
            "reason",
            "actor",
            "updated_at",
        ],
    )


def _quote() -> dict[str, Any]:
    side = _nullable(_closed({"price": DECIMAL, "size": DECIMAL}, ["price", "size"]))
    level = _closed(
        {"level": {"type": "integer"}, "bid": side, "ask": side}, ["level", "bid", "ask"]
    )
    return _closed(
        {
            "mid": DECIMAL,
            "spread_bps": DECIMAL,
            "inventory_usdt": _nullable(DECIMAL),
            "ts_ms": {"type": "integer"},
            "levels": {"type": "array", "items": level},
        },
        ["mid", "spread_bps", "ts_ms", "levels"],
    )


LIVE_DECIMALS = (
    "position",
    "position_usdt",
    "realized_pnl_usdt",
    "unrealized_pnl_usdt",
    "total_pnl_usdt",
    "valuation_price",
)


def _live() -> dict[str, Any]:
    properties: dict[str, Any] = {name: _nullable(DECIMAL) for name in LIVE_DECIMALS}
    properties.update(
        {
            "heartbeat_age_s": {"type": "number"},
            "state": _nullable(STATE_ENUM),
            "triggers": {"type": "array", "items": {"type": "string"}},
            "open_orders": _nullable({"type": "integer"}),
            "book_known": _nullable({"type": "boolean"}),
            "data_age_ms": _nullable({"type": "integer"}),
            "instrument_known": _nullable({"type": "boolean"}),
            "instrument_status": _nullable({"type": "string"}),
            "shadow": _nullable({"type": "boolean"}),
            "last_quote": _nullable(ref("Quote")),
        }
    )
    return _closed(properties, sorted(properties))


def _symbol_summary() -> dict[str, Any]:
    properties = {
        "symbol": {"type": "string"},
        "enabled": {"type": "boolean"},
        "state": _nullable(STATE_ENUM),
        "trigger": _nullable(TRIGGER_ENUM),
        "live": {"type": "boolean"},
        "position_usdt": _nullable(DECIMAL),
        "total_pnl_usdt": _nullable(DECIMAL),
        "open_orders": _nullable({"type": "integer"}),
        "data_age_ms": _nullable({"type": "integer"}),
        "heartbeat_age_s": _nullable({"type": "number"}),
    }
    return _closed(properties, sorted(properties))


def _kill_switch() -> dict[str, Any]:
    properties = {
        "active": {"type": "boolean"},
        "trigger": _nullable(TRIGGER_ENUM),
        "reason": {"type": "string"},
        "actor": {"type": "string"},
        "updated_at": _nullable(TIMESTAMP),
        "redis_copy_active": {"type": "boolean"},
    }
    return _closed(properties, sorted(properties))


def _totals() -> dict[str, Any]:
    counts = ("symbols", "active", "paused", "halted", "live", "open_orders")
    properties: dict[str, Any] = {name: {"type": "integer"} for name in counts}
    properties.update({"position_usdt": DECIMAL, "total_pnl_usdt": DECIMAL})
    return _closed(properties, sorted(properties))


def _overall_status() -> dict[str, Any]:
    properties = {
        "kill_switch": ref("KillSwitch"),
        "shadow_mode": {"type": "boolean"},
        "symbols": {"type": "array", "items": ref("SymbolSummary")},
        "totals": ref("Totals"),
        "supervisor_heartbeat_age_s": _nullable({"type": "number"}),
    }
    return _closed(properties, sorted(properties))


def _position() -> dict[str, Any]:
    properties = {
        "quantity": DECIMAL,
        "avg_entry_price": DECIMAL,
        "realized_pnl_usdt": DECIMAL,
        "fees_paid_usdt": DECIMAL,
        "updated_at": _nullable(TIMESTAMP),
    }
    return _closed(properties, sorted(properties))


def _order() -> dict[str, Any]:
    properties = {
        "client_order_id": {"type": "string", "format": "uuid"},
        "order_id": _nullable({"type": "string"}),
        "side": {"type": "string", "enum": ["BUY", "SELL"]},
        "price": DECIMAL,
        "quantity": DECIMAL,
        "filled_quantity": DECIMAL,
        "status": {"type": "string"},
        "level": {"type": "integer"},
        "created_at": TIMESTAMP,
    }
    return _closed(properties, sorted(properties))


def _symbol_status() -> dict[str, Any]:
    properties = {
        "symbol": {"type": "string"},
        "config": ref("Config"),
        "state": _nullable(ref("SymbolState")),
        "position": _nullable(ref("Position")),
        "open_orders": {"type": "array", "items": ref("Order")},
        "live": _nullable(ref("LiveStatus")),
        "kill_switch_active": {"type": "boolean"},
    }
    return _closed(properties, sorted(properties))


def _config() -> dict[str, Any]:
    properties: dict[str, Any] = {"symbol": {"type": "string"}}
    properties.update({f.name: _response_field(f) for f in CONFIG_SPEC})
    properties.update(
        {"created_at": TIMESTAMP, "updated_at": TIMESTAMP, "updated_by": {"type": "string"}}
    )
    return _closed(properties, list(properties))


def _kill_result() -> dict[str, Any]:
    properties = {
        "scope": {"type": "string", "enum": ["ALL", "SYMBOL"]},
        "symbol": _nullable({"type": "string"}),
        "handled_by": {"type": "string", "enum": ["supervisor", "admin"]},
        "kill_switch_active": {"type": "boolean"},
        "halted": SYMBOL_LIST,
        "no_answer": SYMBOL_LIST,
        "orders_flat": _nullable({"type": "boolean"}),
    }
    return _closed(properties, sorted(properties))


def _check() -> dict[str, Any]:
    properties = {
        "ok": {"type": "boolean"},
        "error": _nullable({"type": "string"}),
        "latency_ms": {"type": "number"},
    }
    return _closed(properties, sorted(properties))


def components() -> dict[str, dict[str, Any]]:
    """Every component schema of the OpenAPI document, by name."""
    checks = ("postgres", "redis", "kafka", "supervisor")
    return {
        "Error": _error(),
        "ConfigCreate": _config_request(with_symbol=True),
        "ConfigUpdate": _config_request(with_symbol=False),
        "Config": _config(),
        "ConfigList": _closed({"configs": {"type": "array", "items": ref("Config")}}, ["configs"]),
        "SymbolState": _symbol_state(),
        "Quote": _quote(),
        "LiveStatus": _live(),
        "SymbolSummary": _symbol_summary(),
        "KillSwitch": _kill_switch(),
        "Totals": _totals(),
        "OverallStatus": _overall_status(),
        "Position": _position(),
        "Order": _order(),
        "SymbolStatus": _symbol_status(),
        "KillRequest": _closed(
            {
                "symbol": _nullable(SYMBOL_SCHEMA),
                "reason": _nullable({"type": "string", "maxLength": REASON_MAX}),
            }
        ),
        "KillResult": _kill_result(),
        "ResetRequest": _closed({"symbol": _nullable(SYMBOL_SCHEMA)}),
        "ResetResult": _closed(
            {
                "reset": SYMBOL_LIST,
                "refused": REASONS,
                "no_answer": SYMBOL_LIST,
                "global_flag_cleared": {"type": "boolean"},
                "reason": _nullable({"type": "string"}),
            },
            ["reset", "refused", "no_answer", "global_flag_cleared", "reason"],
        ),
        "CommandSummary": _closed(
            {"ok": SYMBOL_LIST, "refused": REASONS, "no_answer": SYMBOL_LIST},
            ["ok", "refused", "no_answer"],
        ),
        "Health": _closed({"status": {"type": "string", "enum": ["alive"]}}, ["status"]),
        "Check": _check(),
        "Readiness": _closed(
            {
                "ready": {"type": "boolean"},
                "checks": _closed({name: ref("Check") for name in checks}, list(checks)),
            },
            ["ready", "checks"],
        ),
    }
