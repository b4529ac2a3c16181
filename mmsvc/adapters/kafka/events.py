"""Records of the topics mmsvc publishes, built exactly to their Avro schemas.

Every field is a JSON value (decimals as plain strings), so a record can sit
in the outbox's JSONB column and be encoded later by the relay. Every record
carries ``shadow`` (CONTRACTS.md) and a fresh ``event_id`` for consumers to
de-duplicate on (ARCHITECTURE D16).
"""

from __future__ import annotations

import time
import uuid
from decimal import Decimal
from typing import Any

from mmsvc.domain.decimals import decimal_text


def now_ms() -> int:
    """Wall-clock epoch milliseconds, UTC (the ``ts_ms`` of every event)."""
    return time.time_ns() // 1_000_000


def state_changed(
    symbol: str,
    previous: str | None,
    new: str,
    *,
    reason: str,
    actor: str,
    shadow: bool,
    ts_ms: int | None = None,
) -> dict[str, Any]:
    """An ``mm.state.changed.v1`` record; ``previous`` is None for a new symbol."""
    return {
        "event_id": str(uuid.uuid4()),
        "symbol": symbol,
        "previous_state": previous,
        "new_state": new,
        "reason": reason,
        "actor": actor,
        "shadow": shadow,
        "ts_ms": now_ms() if ts_ms is None else ts_ms,
    }


def risk_triggered(
    symbol: str | None,
    trigger: str,
    *,
    detail: str,
    position_usdt: Decimal,
    pnl_usdt: Decimal,
    shadow: bool,
    ts_ms: int | None = None,
) -> dict[str, Any]:
    """An ``mm.risk.triggered.v1`` record; a None symbol means every symbol (D7)."""
    return {
        "event_id": str(uuid.uuid4()),
        "symbol": symbol,
        "trigger": trigger,
        "detail": detail,
        "position": decimal_text(position_usdt),
        "pnl": decimal_text(pnl_usdt),
        "shadow": shadow,
        "ts_ms": now_ms() if ts_ms is None else ts_ms,
    }
