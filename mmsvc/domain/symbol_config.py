"""A symbol's config, defined once (spec: Per-Symbol Configuration; issue 11).

``ConfigFields`` is the one list of the settable fields, with their types,
defaults and bounds. Everything else is derived from it:

- the admin API validates POST and PUT bodies with it (a PUT is a partial body:
  every field has a default and only the fields sent are applied), and its
  OpenAPI schemas are these classes' own JSON Schema (``TypeAdapter.json_schema``,
  each decimal string given its exact pattern by ``_document_decimals``);
- ``MMConfig`` adds the symbol: it is the frozen config the quoting core reads;
- the ORM columns of mm_configs, their server defaults and CHECK constraints are
  generated from the fields (``mmsvc.adapters.db.config_table``), and a test
  compares the migrated database's constraints with them.

The config is a pydantic *dataclass* (frozen, slots), not a ``BaseModel``: the
core reads config fields on every tick, and a slots attribute read measured
15 ns against 65-110 ns for a ``BaseModel`` field on this machine. Construction
validates (about 13 us, once per load or update, never per tick), so the core,
the admin and the database adapter share one class and no derived copy.

Bounds are those a risk officer signs: a value outside one is a typo or an
attack, never a strategy (1e40 USDT orders crashed a worker; 1e300 switched the
exposure limit off). JSON numbers reach ``Decimal`` without a float (the admin
parses with ``parse_float=Decimal``), and a float is refused here, so no binary
rounding reaches a price or a limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from decimal import Decimal
from typing import Annotated, Any

from annotated_types import Ge, Gt, Le, Lt
from pydantic import (
    AfterValidator,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    StringConstraints,
)
from pydantic.dataclasses import dataclass as pydantic_dataclass
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from mmsvc.domain.decimals import decimal_text

# CONTRACTS.md, General rules: the symbol format and length.
SYMBOL_PATTERN = r"^[A-Z0-9]{2,16}(-[A-Z0-9]{2,16})?$"
SYMBOL_MAX = 32
MAX_DIGITS = 38  # significant digits of any decimal (issue 11)
# Decimal places: a binary64 float's shortest form (a JSON number most clients
# compute) never needs more than 324, so none is refused for its size alone,
# while 1e-100000 is (PostgreSQL's NUMERIC holds 16383).
MAX_SCALE = 340
# A decimal string has at most MAX_DIGITS digits and its point: the schema can say that.
DECIMAL_MAX_CHARS = MAX_DIGITS + 1
BPS_MAX = Decimal(10_000)  # 100 % of the price: anything wider is an error, never a strategy
USDT_MAX = Decimal(10**12)  # a trillion USDT: more than any account could hold
MS_MAX = 3_600_000  # an hour: a slower quote or staleness check is an error

# Unsigned: no config decimal is negative, so a sign is never needed.
_PLAIN_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")


def _decimal(value: object) -> object:
    """A JSON string or number as Decimal; a float or bool never (no binary rounding)."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PydanticCustomError("invalid_type", "must be a decimal string or a number")
    if isinstance(value, str) and (
        len(value) > DECIMAL_MAX_CHARS or not _PLAIN_DECIMAL.fullmatch(value)
    ):
        raise PydanticCustomError("invalid_format", 'must be a plain decimal string such as "10.5"')
    return Decimal(value)


def _whole(value: object) -> object:
    """A JSON number without a fraction (5.0 is 5) as int; anything else as it came."""
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    return value


def _sane_size(value: Decimal) -> Decimal:
    """At most MAX_DIGITS significant digits and MAX_SCALE decimal places."""
    _, digits, exponent = value.as_tuple()
    if len(digits) > MAX_DIGITS:
        raise PydanticCustomError(
            "too_many_digits", "must have at most {max} significant digits", {"max": MAX_DIGITS}
        )
    if isinstance(exponent, int) and -exponent > MAX_SCALE:
        raise PydanticCustomError(
            "too_many_places", "must have at most {max} decimal places", {"max": MAX_SCALE}
        )
    return value


# Bounds come first in each Annotated: pydantic then applies them to the Decimal
# itself, so model_json_schema states them (minimum, exclusiveMinimum, maximum).
_DECIMAL = (
    BeforeValidator(_decimal),
    Field(allow_inf_nan=False),
    AfterValidator(_sane_size),
    PlainSerializer(decimal_text, return_type=str, when_used="json"),
)
Bps = Annotated[Decimal, Field(gt=0, le=BPS_MAX), *_DECIMAL]
BpsOrZero = Annotated[Decimal, Field(ge=0, le=BPS_MAX), *_DECIMAL]
Usdt = Annotated[Decimal, Field(gt=0, le=USDT_MAX), *_DECIMAL]
Fraction = Annotated[Decimal, Field(ge=0, le=1), *_DECIMAL]
Symbol = Annotated[str, StringConstraints(pattern=SYMBOL_PATTERN, max_length=SYMBOL_MAX)]


def decimal_pattern(found: Bounds) -> str:
    """A regular expression of exactly the unsigned decimal strings within ``found``.

    Only the shapes the model uses are written out: a low end of 0 (open or
    closed) and a high end of a power of ten, closed; another shape raises, so
    a new field's bounds are never documented wrongly.
    """
    high = found.high
    power = 0 if high is None else len(str(int(high))) - 1
    if found.low != 0 or high != 10**power or not found.high_inclusive:
        raise ValueError(f"no string pattern for bounds {found.text()}")
    zero = r"0+(\.[0-9]+)?" if found.low_inclusive else r"0+\.[0-9]*[1-9][0-9]*"
    parts = [zero, rf"0*1{'0' * power}(\.0+)?"]
    if power > 0:
        parts.insert(1, rf"0*[1-9][0-9]{{0,{power - 1}}}(\.[0-9]+)?")
    return f"^({'|'.join(parts)})$"


def _document_decimals(schema: dict[str, Any], _: type) -> None:
    """Give each decimal's string form its exact pattern: the schema promises what is accepted."""
    for name, prop in schema.get("properties", {}).items():
        found = bounds(name) if name in CONFIG_FIELDS and is_decimal(name) else None
        if found is None:
            continue
        text: dict[str, Any] = {"type": "string", "pattern": decimal_pattern(found)}
        if "anyOf" in prop:  # a request: a string or a JSON number
            text["maxLength"] = DECIMAL_MAX_CHARS
            prop["anyOf"] = [
                text if branch.get("type") == "string" else branch for branch in prop["anyOf"]
            ]
        else:  # a response: always the string (a stored value may have more places)
            prop.update(text)


# Every model of a config (and a row of one) refuses unknown fields and coerces
# nothing; its JSON Schema states every field as required in a response.
STRICT = ConfigDict(
    extra="forbid",
    strict=True,
    json_schema_extra=_document_decimals,
    json_schema_serialization_defaults_required=True,
)


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=STRICT)
class ConfigFields:
    """The settable fields of a symbol's config, each with its default and bounds."""

    enabled: bool = False
    base_spread_bps: Bps = Decimal("10.0")
    order_size_usdt: Usdt = Decimal("100.0")
    # bias = inv_norm x skew x spread/2 (spec, Formula): at 1 a full position moves
    # its reducing side to the mid; above 1 it would quote through the mid, paying
    # the spread to unwind, which is a flatten, not a market maker's skew.
    inventory_skew_factor: Fraction = Decimal("0.5")
    max_position_usdt: Usdt = Decimal("10000.0")
    max_loss_usdt: Usdt = Decimal("500.0")
    volatility_multiplier: bool = True
    num_levels: Annotated[int, Field(ge=1, le=20), BeforeValidator(_whole)] = 1
    level_spacing_bps: Bps = Decimal("5.0")
    check_staleness: bool = False
    staleness_threshold_ms: Annotated[int, Field(ge=1, le=MS_MAX), BeforeValidator(_whole)] = 1000
    # Below 10 ms the requote timer would spin the worker (D13: it is also the timer).
    quote_interval_ms: Annotated[int, Field(ge=10, le=MS_MAX), BeforeValidator(_whole)] = 100
    # 0 is meaningful: requote whenever the wanted price moves at all; requotes stay
    # spaced by quote_interval_ms and MAX_ORDERS_PER_SECOND.
    price_threshold_bps: BpsOrZero = Decimal("5.0")


@pydantic_dataclass(frozen=True, slots=True, kw_only=True, config=STRICT)
class MMConfig(ConfigFields):
    """One symbol's config as the core reads it: the symbol and its validated fields."""

    symbol: Symbol


CONFIG_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(ConfigFields))


def field_info(name: str) -> FieldInfo:
    """pydantic's record of config field `name`: its annotation, default and constraints."""
    infos: dict[str, FieldInfo] = ConfigFields.__pydantic_fields__  # type: ignore[attr-defined]
    return infos[name]


def field_values(config: ConfigFields) -> dict[str, Any]:
    """The settable fields of a config, by name (the symbol left out)."""
    return {name: getattr(config, name) for name in CONFIG_FIELDS}


@dataclass(frozen=True, slots=True)
class Bounds:
    """A field's range: each end is None when open, inclusive or not."""

    low: Decimal | None
    low_inclusive: bool
    high: Decimal | None
    high_inclusive: bool

    def text(self) -> str:
        """The range as a reader says it: ``> 0 and <= 10000``."""
        parts = []
        if self.low is not None:
            parts.append(f"{'>=' if self.low_inclusive else '>'} {self.low}")
        if self.high is not None:
            parts.append(f"{'<=' if self.high_inclusive else '<'} {self.high}")
        return " and ".join(parts)


def bounds(name: str) -> Bounds | None:
    """The range of a numeric config field, read from the model; None for a boolean."""
    low: tuple[Decimal | None, bool] = (None, False)
    high: tuple[Decimal | None, bool] = (None, False)
    for item in field_info(name).metadata:
        if isinstance(item, Gt | Ge):
            low = (_number(item), isinstance(item, Ge))
        elif isinstance(item, Lt | Le):
            high = (_number(item), isinstance(item, Le))
    if low[0] is None and high[0] is None:
        return None
    return Bounds(low[0], low[1], high[0], high[1])


def _number(item: Any) -> Decimal:
    for name in ("gt", "ge", "lt", "le"):
        if hasattr(item, name):
            return Decimal(getattr(item, name))
    raise TypeError(item)  # pragma: no cover - the four kinds above are all there are


def is_decimal(name: str) -> bool:
    """True for a Decimal field (money, bps), whose digits are bounded too."""
    return field_info(name).annotation is Decimal
