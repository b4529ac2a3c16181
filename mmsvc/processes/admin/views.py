"""Records and live status turned into the response bodies of :mod:`status_bodies`, nothing more.

The live status comes from Redis, written by another process: every value is
re-checked here (a decimal that does not parse becomes null, unknown keys are
dropped), so a response always matches its model; the model writes the text.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from mmsvc.adapters.db.leases import Holder
from mmsvc.adapters.db.records import (
    ConfigRecord,
    KillFlag,
    OrderRecord,
    PositionRecord,
    StateRecord,
    SymbolState,
)
from mmsvc.processes.admin import status_bodies as bodies
from mmsvc.processes.admin.bodies import shared_fields

STATE_NAMES = frozenset(s.value for s in SymbolState)
"""A symbol state as the API shows it; anything else read from outside is shown as null."""


def state_view(enabled: bool, state: StateRecord) -> bodies.SymbolState:
    """The SymbolState body: the stored state and whether the config is enabled."""
    return bodies.SymbolState(**shared_fields(state, bodies.SymbolState), enabled=enabled)


def position_view(position: PositionRecord) -> bodies.Position:
    """The Position body (as stored: quantity signed, negative when short)."""
    return bodies.Position(
        **shared_fields(position, bodies.Position),
        realized_pnl_usdt=position.realized_pnl,
        fees_paid_usdt=position.fees_paid,
    )


def order_view(order: OrderRecord) -> bodies.Order:
    """The Order body."""
    return bodies.Order(**shared_fields(order, bodies.Order))


def kill_switch_view(
    flag: KillFlag, redis_copy: Mapping[str, Any] | None, *, known: bool = True
) -> bodies.KillSwitch:
    """The KillSwitch body: PostgreSQL's flag (the authority, D3) and whether Redis agrees.

    `known` False: Redis did not answer, so whether it holds a copy is null (D25).
    """
    return bodies.KillSwitch(
        **shared_fields(flag, bodies.KillSwitch),
        redis_copy_active=(redis_copy is not None) if known else None,
    )


# --------------------------------------------------------- live status


def _dec(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool | float):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    return number if number.is_finite() else None


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _side(raw: object) -> bodies.QuoteSide | None:
    if not isinstance(raw, Mapping):
        return None
    price, size = _dec(raw.get("price")), _dec(raw.get("size"))
    return None if price is None or size is None else bodies.QuoteSide(price=price, size=size)


def quote_view(raw: object) -> bodies.Quote | None:
    """The Quote body, or None when the stored quote is absent or malformed."""
    if not isinstance(raw, Mapping):
        return None
    mid, spread, ts_ms = _dec(raw.get("mid")), _dec(raw.get("spread_bps")), _int(raw.get("ts_ms"))
    levels = raw.get("levels")
    if mid is None or spread is None or ts_ms is None or not isinstance(levels, list):
        return None
    return bodies.Quote(
        mid=mid,
        spread_bps=spread,
        inventory_usdt=_dec(raw.get("inventory_usdt")),
        ts_ms=ts_ms,
        levels=[
            bodies.QuoteLevel(
                level=_int(lv.get("level")) or 0,
                bid=_side(lv.get("bid")),
                ask=_side(lv.get("ask")),
            )
            for lv in levels
            if isinstance(lv, Mapping)
        ],
    )


def heartbeat_age_s(raw: Mapping[str, Any], now: float) -> float:
    """Seconds since the worker wrote this status."""
    beat = raw.get("heartbeat_ts")
    return max(0.0, now - beat) if isinstance(beat, int | float) else 0.0


def live_view(raw: Mapping[str, Any], now: float | None = None) -> bodies.LiveStatus:
    """The LiveStatus body from what a worker wrote to Redis."""
    now = time.time() if now is None else now
    state = raw.get("state")
    triggers = raw.get("triggers")
    return bodies.LiveStatus(
        **{name: _dec(raw.get(name)) for name in bodies.LIVE_DECIMALS},
        heartbeat_age_s=round(heartbeat_age_s(raw, now), 3),
        state=SymbolState(state) if state in STATE_NAMES else None,
        triggers=[t for t in triggers if isinstance(t, str)] if isinstance(triggers, list) else [],
        open_orders=_int(raw.get("open_orders")),
        book_known=_bool(raw.get("book_known")),
        data_age_ms=_int(raw.get("data_age_ms")),
        instrument_known=_bool(raw.get("instrument_known")),
        instrument_status=_str(raw.get("instrument_status")),
        shadow=_bool(raw.get("shadow")),
        last_quote=quote_view(raw.get("last_quote")),
    )


def summary_view(
    config: ConfigRecord,
    state: StateRecord | None,
    live: Mapping[str, Any] | None,
    now: float,
    holder: Holder | None = None,
    *,
    known: bool = True,
) -> bodies.SymbolSummary:
    """The SymbolSummary body: one line of the overall status.

    ``owner`` is the live lease's holder (host/pid), null between owners;
    ``epoch`` the lease's last epoch (D26, D28). ``known`` False: Redis did not
    answer, so whether the worker is live is null (D25).
    """
    view = live_view(live, now) if live is not None else None
    return bodies.SymbolSummary(
        owner=holder.owner if holder is not None and holder.live else None,
        epoch=None if holder is None else holder.epoch,
        symbol=config.symbol,
        enabled=config.enabled,
        state=None if state is None else state.state,
        trigger=None if state is None else state.trigger,
        live=(view is not None) if known else None,
        position_usdt=None if view is None else view.position_usdt,
        total_pnl_usdt=None if view is None else view.total_pnl_usdt,
        open_orders=None if view is None else view.open_orders,
        data_age_ms=None if view is None else view.data_age_ms,
        heartbeat_age_s=None if view is None else view.heartbeat_age_s,
    )


def totals_view(summaries: list[bodies.SymbolSummary]) -> bodies.Totals:
    """The Totals body: counts by state and sums of what the live statuses say."""
    return bodies.Totals(
        symbols=len(summaries),
        active=sum(s.state is SymbolState.ACTIVE for s in summaries),
        paused=sum(s.state is SymbolState.PAUSED for s in summaries),
        halted=sum(s.state is SymbolState.HALTED for s in summaries),
        live=None
        if any(s.live is None for s in summaries)
        else sum(bool(s.live) for s in summaries),
        open_orders=sum(s.open_orders or 0 for s in summaries),
        position_usdt=sum((s.position_usdt or Decimal(0) for s in summaries), Decimal(0)),
        total_pnl_usdt=sum((s.total_pnl_usdt or Decimal(0) for s in summaries), Decimal(0)),
    )
