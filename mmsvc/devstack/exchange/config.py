"""The simulator's configuration: instruments, their markets, fees, accounts and dev tokens.

Read from a TOML file (``default.toml`` beside this module unless ``--config``
names another); every price and size is a Decimal on its instrument's grid.

Besides the instruments it names, the simulator lists as many generated ones
as asked (``[exchange] generated_instruments = N``, ``--generated-instruments``
or ``EXCHANGE_GENERATED_INSTRUMENTS``; at runtime ``POST /v1/instruments/generate``):
``SIM0001USDT``, ``SIM0002USDT``... (``generated_prefix``), each with its own mid,
tick and lot from its number (every fourth a PERPETUAL, with marks) and a feed of
``generated_msgs_per_s`` messages a second: a light and quiet feed (steps of
``GENERATED_VOLATILITY_BPS``, within a quoting symbol's default 5 bps price
threshold, so most messages need no requote), so that 200 quoting symbols stay
affordable on two cores.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

DEFAULT_CONFIG = Path(__file__).with_name("default.toml")
SYMBOL_RE = re.compile(r"^[A-Z0-9]{2,16}(-[A-Z0-9]{2,16})?$")
KINDS = ("SPOT", "PERPETUAL")
STATUSES = ("TRADING", "HALTED")


class ConfigError(ValueError):
    """The simulator's configuration is malformed; the message says where."""


@dataclass(frozen=True, slots=True)
class InstrumentSpec:
    """What the Metadata Service says about an instrument."""

    symbol: str
    base_asset: str
    quote_asset: str
    kind: str
    tick_size: Decimal
    lot_size: Decimal
    min_notional: Decimal
    status: str = "TRADING"


@dataclass(frozen=True, slots=True)
class MarketParams:
    """How an instrument's simulated market moves and how fast it talks."""

    mid: Decimal
    half_spread_ticks: int = 5
    levels: int = 10
    level_step_ticks: int = 5
    level_size_lots: tuple[int, int] = (10, 1000)
    trade_size_lots: tuple[int, int] = (5, 500)
    msgs_per_s: float = 20.0
    volatility_bps: float = 5.0
    jump_probability: float = 0.01
    jump_bps: float = 50.0


@dataclass(frozen=True, slots=True)
class TokenSpec:
    """A dev token of the Auth Service and what introspection says of it."""

    token: str
    subject: str
    roles: tuple[str, ...]
    active: bool = True


@dataclass(frozen=True, slots=True)
class ExchangeConfig:
    """Everything the simulator is started with."""

    instruments: tuple[tuple[InstrumentSpec, MarketParams], ...]
    tokens: tuple[TokenSpec, ...] = ()
    snapshot_interval_s: float = 5.0
    mark_interval_s: float = 1.0
    maker_fee_bps: Decimal = Decimal("-1")
    taker_fee_bps: Decimal = Decimal("5")
    other_accounts: tuple[str, ...] = ()
    order_service_tokens: tuple[str, ...] = field(default=())
    generated_instruments: int = 0
    generated_prefix: str = "SIM"
    generated_msgs_per_s: float = 2.0

    def with_overrides(self, **changes: Any) -> ExchangeConfig:
        """A copy with the given top-level fields replaced."""
        return replace(self, **changes)


def decimal(value: object, where: str) -> Decimal:
    """A finite Decimal from a string or number, or ConfigError naming ``where``."""
    try:
        result = Decimal(str(value))
    except InvalidOperation as exc:
        raise ConfigError(f"{where}: {value!r} is not a decimal") from exc
    if not result.is_finite():
        raise ConfigError(f"{where}: {value!r} is not finite")
    return result


def parse_instrument(raw: Mapping[str, Any]) -> InstrumentSpec:
    """An InstrumentSpec from a mapping, validated as CONTRACTS.md requires."""
    symbol = str(raw.get("symbol", ""))
    if not SYMBOL_RE.match(symbol) or len(symbol) > 32:
        raise ConfigError(f"instrument symbol {symbol!r} does not match {SYMBOL_RE.pattern}")
    where = f"instrument {symbol}"
    kind = str(raw.get("kind", "SPOT"))
    status = str(raw.get("status", "TRADING"))
    if kind not in KINDS or status not in STATUSES:
        raise ConfigError(f"{where}: kind must be one of {KINDS}, status one of {STATUSES}")
    spec = InstrumentSpec(
        symbol=symbol,
        base_asset=_required_str(raw, "base_asset", where),
        quote_asset=_required_str(raw, "quote_asset", where),
        kind=kind,
        tick_size=decimal(raw.get("tick_size"), f"{where} tick_size"),
        lot_size=decimal(raw.get("lot_size"), f"{where} lot_size"),
        min_notional=decimal(raw.get("min_notional", "0"), f"{where} min_notional"),
        status=status,
    )
    if spec.tick_size <= 0 or spec.lot_size <= 0 or spec.min_notional < 0:
        raise ConfigError(f"{where}: tick and lot must be positive, min_notional not negative")
    return spec


def parse_market(raw: Mapping[str, Any], spec: InstrumentSpec) -> MarketParams:
    """The MarketParams of an instrument; the mid is snapped to the tick grid."""
    where = f"instrument {spec.symbol}"
    mid = decimal(raw.get("mid"), f"{where} mid")
    if mid <= 0:
        raise ConfigError(f"{where}: mid must be positive")
    defaults = MarketParams(mid=mid)
    params = replace(
        defaults,
        mid=(mid / spec.tick_size).to_integral_value() * spec.tick_size,
        **{
            name: _typed(raw[name], getattr(defaults, name), f"{where} {name}")
            for name in MARKET_TUNABLES
            if name in raw
        },
    )
    validate_market(params, where)
    return params


MARKET_TUNABLES = (
    "half_spread_ticks",
    "levels",
    "level_step_ticks",
    "level_size_lots",
    "trade_size_lots",
    "msgs_per_s",
    "volatility_bps",
    "jump_probability",
    "jump_bps",
)


def validate_market(params: MarketParams, where: str) -> None:
    """Raise ConfigError unless the market parameters can produce a sane book."""
    lows = (params.level_size_lots[0], params.trade_size_lots[0])
    if params.half_spread_ticks < 1 or params.levels < 1 or params.level_step_ticks < 1:
        raise ConfigError(f"{where}: half_spread_ticks, levels, level_step_ticks must be >= 1")
    if min(lows) < 1 or params.level_size_lots[1] < lows[0] or params.trade_size_lots[1] < lows[1]:
        raise ConfigError(f"{where}: size ranges must be [low, high] with 1 <= low <= high")
    if params.msgs_per_s < 0 or params.volatility_bps < 0 or params.jump_bps < 0:
        raise ConfigError(f"{where}: rates and volatilities must not be negative")
    if not 0 <= params.jump_probability <= 1:
        raise ConfigError(f"{where}: jump_probability must be within [0, 1]")


def update_market(params: MarketParams, changes: Mapping[str, Any], where: str) -> MarketParams:
    """``params`` with the tunables in ``changes`` replaced, validated."""
    unknown = set(changes) - set(MARKET_TUNABLES)
    if unknown:
        raise ConfigError(f"{where}: unknown market parameters {sorted(unknown)}")
    updated = replace(
        params,
        **{name: _typed(value, getattr(params, name), name) for name, value in changes.items()},
    )
    validate_market(updated, where)
    return updated


MAX_GENERATED = 9999  # four digits keep SIM0001USDT within the 16 characters of a symbol part
_PREFIX_RE = re.compile(r"^[A-Z]{1,8}$")


# A quiet market (issue 13): a named instrument's 5 bps steps against the default 5 bps
# price threshold make nearly every message a requote; 200 such symbols are a busy
# market, not 200 quoting ones. Jumps still come, about one a symbol every 17 minutes.
GENERATED_VOLATILITY_BPS = 1.0
GENERATED_JUMP_PROBABILITY = 0.0005


def generated_symbol(prefix: str, number: int) -> str:
    """The symbol of generated instrument ``number`` (from 1): ``SIM0001USDT``."""
    return f"{prefix}{number:04d}USDT"


def check_generated(count: int, prefix: str, msgs_per_s: float) -> None:
    """Raise ConfigError unless ``count`` instruments can be generated with ``prefix``."""
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_GENERATED:
        raise ConfigError(f"generated_instruments must be an integer within [0, {MAX_GENERATED}]")
    if not isinstance(prefix, str) or not _PREFIX_RE.match(prefix):
        raise ConfigError("generated_prefix must be 1 to 8 capital letters")
    if isinstance(msgs_per_s, bool) or not isinstance(msgs_per_s, int | float) or msgs_per_s < 0:
        raise ConfigError("generated_msgs_per_s must be a number >= 0")


def generated_instrument(
    prefix: str, number: int, msgs_per_s: float
) -> tuple[InstrumentSpec, MarketParams]:
    """Generated instrument ``number``: its own price level, tick and lot, all from its number.

    The mid lies within [1, 10) times a power of ten from 0.01 to 1000, the tick is
    0.1 to 1 bps of it and one lot is worth 1 to 10 USDT, so a few bps of spread
    and a few lots of size are meaningful on every one.
    """
    exponent = number % 6 - 2
    scale = Decimal(10) ** exponent
    symbol = generated_symbol(prefix, number)
    spec = parse_instrument(
        {
            "symbol": symbol,
            "base_asset": symbol.removesuffix("USDT"),
            "quote_asset": "USDT",
            "kind": "PERPETUAL" if number % 4 == 0 else "SPOT",
            "tick_size": format(scale / 10_000, "f"),
            "lot_size": format(1 / scale, "f"),
            "min_notional": "1",
        }
    )
    mid = scale * (1 + Decimal(number * 37 % 90) / 10)
    market = {
        "mid": format(mid, "f"),
        "msgs_per_s": msgs_per_s,
        "volatility_bps": GENERATED_VOLATILITY_BPS,
        "jump_probability": GENERATED_JUMP_PROBABILITY,
    }
    return spec, parse_market(market, spec)


def load_config(path: Path | None = None) -> ExchangeConfig:
    """The configuration in ``path`` (the demo defaults when None)."""
    try:
        raw = tomllib.loads((path or DEFAULT_CONFIG).read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read {path or DEFAULT_CONFIG}: {exc}") from exc
    top = raw.get("exchange", {})
    instruments = []
    for entry in raw.get("instruments", []):
        spec = parse_instrument(entry)
        instruments.append((spec, parse_market(entry, spec)))
    if len({spec.symbol for spec, _ in instruments}) != len(instruments):
        raise ConfigError("instrument symbols must be unique")
    generated = top.get("generated_instruments", 0)
    prefix = top.get("generated_prefix", "SIM")
    generated_rate = top.get("generated_msgs_per_s", 2.0)
    check_generated(generated, prefix, generated_rate)
    return ExchangeConfig(
        instruments=tuple(instruments),
        tokens=tuple(_token(entry) for entry in raw.get("tokens", [])),
        snapshot_interval_s=float(top.get("snapshot_interval_s", 5.0)),
        mark_interval_s=float(top.get("mark_interval_s", 1.0)),
        maker_fee_bps=decimal(top.get("maker_fee_bps", "-1"), "maker_fee_bps"),
        taker_fee_bps=decimal(top.get("taker_fee_bps", "5"), "taker_fee_bps"),
        other_accounts=tuple(str(a) for a in top.get("other_accounts", [])),
        order_service_tokens=tuple(str(t) for t in top.get("order_service_tokens", [])),
        generated_instruments=generated,
        generated_prefix=prefix,
        generated_msgs_per_s=float(generated_rate),
    )


def _token(raw: Mapping[str, Any]) -> TokenSpec:
    return TokenSpec(
        token=_required_str(raw, "token", "token"),
        subject=_required_str(raw, "subject", "token"),
        roles=tuple(str(role) for role in raw.get("roles", [])),
        active=bool(raw.get("active", True)),
    )


def _required_str(raw: Mapping[str, Any], name: str, where: str) -> str:
    value = raw.get(name)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {name} is required")
    return value


def _typed(value: Any, like: Any, where: str) -> Any:
    """``value`` coerced to the type of the default ``like``."""
    try:
        if isinstance(like, tuple):
            low, high = (int(v) for v in value)
            return (low, high)
        if isinstance(like, bool):
            return bool(value)
        return type(like)(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{where}: {value!r} is not a valid {type(like).__name__}") from exc
