"""The settable config fields of a symbol, and the config bodies of POST and PATCH."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from mmsvc.adapters.db.records import ConfigFields
from mmsvc.processes.admin.errors import ApiError
from mmsvc.processes.admin.validation import Field, Rule, check_field, check_symbol, reject_unknown

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


def config_fields(body: Mapping[str, Any], *, extra: set[str] | None = None) -> ConfigFields:
    """The config fields of a request body, each checked against its rule."""
    reject_unknown(body, set(_BY_NAME) | (extra or set()))
    parsed: dict[str, Any] = {}
    for name, value in body.items():
        field = _BY_NAME.get(name)
        if field is None:
            continue
        parsed[name] = check_field(field, value)
    return cast(ConfigFields, parsed)


def config_create(body: Mapping[str, Any]) -> tuple[str, ConfigFields]:
    """POST /v1/mm-configs: a symbol and any config fields (the rest take the defaults)."""
    fields = config_fields(body, extra={"symbol"})
    if "symbol" not in body:
        raise ApiError(400, "MISSING_FIELD", "symbol is required", field="symbol")
    return check_symbol(body["symbol"]), fields
