"""Wire rules for every consumed record, checked after decoding and before any state (D24, D31).

Pure and without I/O: :func:`check` takes a topic, the message key (the
symbol the record was routed by) and the decoded Avro record, and answers
``None`` when the record may be applied or a :class:`Refusal` with a short,
bounded reason code (a Prometheus label). It lives beside the codec rather
than in the domain because its rules are per topic and per Avro field, which
is the wire's shape; the domain gets only values that passed them. The
record itself is returned untouched on success: the trader's converters stay
the one place that turns wire strings into Decimals.

Rules (D31): prices > 0; sizes and remaining quantities >= 0 (a delta size of
0 removes a level); a fill's quantity > 0; fees of either sign (a rebate);
every number a plain, finite decimal string of sane magnitude and precision
(no NaN, Infinity, sNaN, no 1E+30); sequences and timestamps >= 0; strings
bounded by the database column they end in and free of NUL (which PostgreSQL
refuses); the record's symbol equal to its key; a snapshot never crossed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from mmsvc.adapters.kafka import topics

# A plain decimal: optional sign, digits, optional fraction, optional exponent.
# Decimal() alone would also take "NaN", "Infinity", " 1", "1_000".
_NUMBER: Final = re.compile(r"-?[0-9]{1,40}(\.[0-9]{1,40})?([eE][-+]?[0-9]{1,3})?")
NUMBER_MAX_CHARS: Final = 48
# Magnitudes: nothing on any venue is priced or sized beyond 1e15 or finer than 1e-18.
MAX_ABS: Final = Decimal("1e15")
MIN_EXPONENT: Final = -18
MAX_EXPONENT: Final = 15
MAX_DIGITS: Final = 34  # PostgreSQL NUMERIC takes more; Decimal's default context has 28+
# Book sides and delta change lists: a real book has far fewer levels.
MAX_LEVELS: Final = 10_000
# String bounds: the database columns they are written to (mm_fills, mm_orders,
# models.py), or a generous bound where the column is TEXT.
EVENT_ID_MAX: Final = 128  # mm_fills.event_id VARCHAR(128)
ORDER_ID_MAX: Final = 64  # mm_orders.order_id, mm_fills.order_id VARCHAR(64)
CLIENT_ORDER_ID_MAX: Final = 64  # mm_fills.client_order_id VARCHAR(64)
ACCOUNT_ID_MAX: Final = 128
ASSET_MAX: Final = 16  # mm_fills.fee_asset VARCHAR(16); base and quote assets alike
REASON_MAX: Final = 1024  # mm_orders.reject_reason TEXT, bounded here
TRADE_ID_MAX: Final = 128
SYMBOL_MAX: Final = 32  # mm_configs.symbol VARCHAR(32)
TS_MAX: Final = 2**62


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a record was refused: ``reason`` a short code (a metric label), ``detail`` for logs."""

    reason: str
    detail: str


class _RefusedError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.refusal = Refusal(reason, detail)


def _refuse(reason: str, detail: str) -> _RefusedError:
    return _RefusedError(reason, detail)


# ---------------------------------------------------------------- field rules


def number(value: Any, kind: str, *, minimum: str) -> Decimal:
    """A finite, plain, sane decimal string; ``minimum`` is "positive", "not_negative" or "any".

    Refusal reasons: ``malformed_<kind>``, ``non_finite_<kind>``,
    ``out_of_range_<kind>``, ``negative_<kind>``, ``not_positive_<kind>``.
    """
    if not isinstance(value, str) or len(value) > NUMBER_MAX_CHARS:
        raise _refuse(f"malformed_{kind}", f"{kind} is not a short decimal string")
    if _NUMBER.fullmatch(value) is None:
        lowered = value.strip().lower().lstrip("+-")
        if lowered in {"nan", "snan", "inf", "infinity"} or lowered.startswith(("nan", "snan")):
            raise _refuse(f"non_finite_{kind}", f"{kind} {value!r} is not finite")
        raise _refuse(f"malformed_{kind}", f"{kind} {value[:48]!r} is not a decimal")
    try:
        parsed = Decimal(value)
    except InvalidOperation as exc:  # the pattern should make this unreachable
        raise _refuse(f"malformed_{kind}", f"{kind} {value!r} is not a decimal") from exc
    if not parsed.is_finite():
        raise _refuse(f"non_finite_{kind}", f"{kind} {value!r} is not finite")
    sign, digits, exponent = parsed.as_tuple()
    if (
        not isinstance(exponent, int)
        or not MIN_EXPONENT <= exponent <= MAX_EXPONENT
        or abs(parsed) >= MAX_ABS
        or len(digits) > MAX_DIGITS
    ):
        raise _refuse(f"out_of_range_{kind}", f"{kind} {value!r} is out of range")
    if minimum == "positive" and parsed <= 0:
        code = "negative" if sign and parsed != 0 else "not_positive"
        raise _refuse(f"{code}_{kind}", f"{kind} {value!r} must be > 0")
    if minimum == "not_negative" and parsed < 0:
        raise _refuse(f"negative_{kind}", f"{kind} {value!r} must be >= 0")
    return parsed


def _optional_number(value: Any, kind: str, *, minimum: str) -> None:
    if value is not None:
        number(value, kind, minimum=minimum)


def text(value: Any, field: str, *, max_len: int, empty_ok: bool = False) -> str:
    """A string within its column's length, without NUL; ``bad_<field>`` otherwise."""
    if not isinstance(value, str):
        raise _refuse(f"bad_{field}", f"{field} is not a string")
    if len(value) > max_len or (not value and not empty_ok) or "\x00" in value:
        raise _refuse(f"bad_{field}", f"{field} is empty, longer than {max_len} or has a NUL")
    return value


def _optional_text(value: Any, field: str, *, max_len: int) -> None:
    if value is not None:
        text(value, field, max_len=max_len, empty_ok=True)


def _integer(value: Any, field: str, *, maximum: int = TS_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value > maximum:
        raise _refuse(f"bad_{field}", f"{field} {value!r} is not an integer up to {maximum}")
    if value < 0:
        raise _refuse(f"negative_{field}", f"{field} {value} is negative")
    return value


def _levels(levels: Any, side: str) -> list[tuple[Decimal, Decimal]]:
    if not isinstance(levels, Sequence) or len(levels) > MAX_LEVELS:
        raise _refuse("too_many_levels", f"{side} has more than {MAX_LEVELS} levels")
    return [
        (
            number(lv["price"], "price", minimum="positive"),
            number(lv["size"], "size", minimum="not_negative"),
        )
        for lv in levels
    ]


# ------------------------------------------------------------------ per topic


def _snapshot(record: Mapping[str, Any]) -> None:
    _integer(record["sequence"], "sequence")
    _integer(record["ts_ms"], "ts_ms")
    bids = [p for p, s in _levels(record["bids"], "bids") if s > 0]
    asks = [p for p, s in _levels(record["asks"], "asks") if s > 0]
    if bids and asks and max(bids) >= min(asks):
        # A matching engine never publishes a crossed book: refuse it whole, store nothing.
        raise _refuse("crossed_book", f"bid {max(bids)} >= ask {min(asks)}")


def _delta(record: Mapping[str, Any]) -> None:
    _integer(record["sequence"], "sequence")
    _integer(record["ts_ms"], "ts_ms")
    changes = record["changes"]
    if not isinstance(changes, Sequence) or len(changes) > MAX_LEVELS:
        raise _refuse("too_many_levels", f"more than {MAX_LEVELS} changes")
    for change in changes:
        number(change["price"], "price", minimum="positive")
        number(change["size"], "size", minimum="not_negative")  # 0 removes the level


def _trade(record: Mapping[str, Any]) -> None:
    _integer(record["ts_ms"], "ts_ms")
    text(record["trade_id"], "trade_id", max_len=TRADE_ID_MAX)
    number(record["price"], "price", minimum="positive")
    number(record["size"], "size", minimum="not_negative")


def _mark(record: Mapping[str, Any]) -> None:
    _integer(record["ts_ms"], "ts_ms")
    number(record["mark_price"], "price", minimum="positive")
    _optional_number(record.get("index_price"), "price", minimum="positive")


def _engine_event(record: Mapping[str, Any]) -> None:
    _integer(record["ts_ms"], "ts_ms")
    text(record["event_id"], "event_id", max_len=EVENT_ID_MAX)
    text(record["order_id"], "order_id", max_len=ORDER_ID_MAX)
    text(record["client_order_id"], "client_order_id", max_len=CLIENT_ORDER_ID_MAX)
    text(record["account_id"], "account_id", max_len=ACCOUNT_ID_MAX)
    number(record["price"], "price", minimum="positive")
    number(record["quantity"], "quantity", minimum="positive")
    number(record["remaining_quantity"], "quantity", minimum="not_negative")
    _optional_text(record.get("reason"), "reason", max_len=REASON_MAX)
    _optional_text(record.get("fee_asset"), "fee_asset", max_len=ASSET_MAX)
    _optional_number(record.get("fee"), "fee", minimum="any")
    if record["event_type"] == "FILL":
        if record.get("fill_price") is None or record.get("fill_quantity") is None:
            raise _refuse("incomplete_fill", "a FILL without fill_price or fill_quantity")
        number(record["fill_price"], "price", minimum="positive")
        number(record["fill_quantity"], "quantity", minimum="positive")  # mm_fills: > 0
    else:
        _optional_number(record.get("fill_price"), "price", minimum="positive")
        _optional_number(record.get("fill_quantity"), "quantity", minimum="not_negative")


def _instrument(record: Mapping[str, Any]) -> None:
    _integer(record["ts_ms"], "ts_ms")
    text(record["base_asset"], "asset", max_len=ASSET_MAX)
    text(record["quote_asset"], "asset", max_len=ASSET_MAX)
    number(record["tick_size"], "tick_size", minimum="positive")
    number(record["lot_size"], "lot_size", minimum="positive")
    number(record["min_notional"], "min_notional", minimum="not_negative")


def _halt_or_resume(record: Mapping[str, Any]) -> None:
    _integer(record["ts_ms"], "ts_ms")
    _optional_text(record.get("reason"), "reason", max_len=REASON_MAX)


_RULES: Final[dict[str, Callable[[Mapping[str, Any]], None]]] = {
    topics.ORDERBOOK_SNAPSHOT: _snapshot,
    topics.ORDERBOOK_DELTA: _delta,
    topics.TRADES: _trade,
    topics.MARK: _mark,
    topics.ENGINE_EVENTS: _engine_event,
    topics.INSTRUMENT_CREATED: _instrument,
    topics.INSTRUMENT_UPDATED: _instrument,
    topics.INSTRUMENT_HALT: _halt_or_resume,
    topics.INSTRUMENT_RESUME: _halt_or_resume,
}


def check(topic: str, key: str | None, record: Mapping[str, Any]) -> Refusal | None:
    """None when ``record`` of ``topic`` keyed ``key`` may be applied, else why; never raises."""
    rule = _RULES.get(topic)
    if rule is None:
        return Refusal("unknown_topic", f"no wire rules for topic {topic[:64]!r}")
    try:
        symbol = record["symbol"]
        if not isinstance(symbol, str) or symbol != key:
            # Routed by its key, naming another symbol: applying it would touch the
            # wrong book or position, acknowledging it silently would hide it (D24).
            return Refusal("symbol_key_mismatch", f"symbol {str(symbol)[:40]!r} != key {key!r}")
        rule(record)
    except _RefusedError as refused:
        return refused.refusal
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        # A reader schema always fills every field; a record built some other way may not.
        return Refusal("malformed_record", f"{type(exc).__name__}: {str(exc)[:80]}")
    return None
