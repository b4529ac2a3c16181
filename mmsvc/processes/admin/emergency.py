"""The emergency kill the admin process carries out itself when the supervisor cannot (D7).

Same records as the supervisor's kill: for every symbol, the global flag in
PostgreSQL (and its Redis copy), one ``mm.risk.triggered.v1`` with a null
symbol, and each symbol HALTED with its state-change event but no risk event
of its own; for one symbol, that symbol HALTED with its risk event. Then the
Order Service's cancel-all for the account (or the symbol) until it lists no
open order, except in shadow mode, which calls the Order Service for nothing
(D18). Every step is idempotent, so running it after a supervisor that did
part of the work records nothing twice. A step that fails (PostgreSQL or
Redis down) never stops the next one: the orders are canceled whatever could
or could not be recorded, and the outcome says what was not.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from redis import RedisError
from sqlalchemy.exc import SQLAlchemyError

from mmsvc.adapters.db.configs import ConfigRepository
from mmsvc.adapters.db.records import RiskTrigger
from mmsvc.adapters.db.states import KillFlagRepository
from mmsvc.adapters.db.transitions import halt, record_risk_event
from mmsvc.processes.admin.context import AdminContext

log = logging.getLogger(__name__)

CANCEL_DEADLINE_S = 10.0


@dataclass(frozen=True, slots=True)
class KillOutcome:
    """What the admin's own kill did; orders_flat is None in shadow mode."""

    halted: list[str]
    orders_flat: bool | None
    not_recorded: list[str] = field(default_factory=list)


def _money(status: dict[str, Any] | None, key: str) -> Decimal:
    try:
        value = Decimal(str((status or {}).get(key, "0")))
    except InvalidOperation:
        return Decimal(0)
    return value if value.is_finite() else Decimal(0)


def kill(context: AdminContext, symbol: str | None, detail: str, actor: str) -> KillOutcome:
    """Kill every symbol (symbol None) or one, without the supervisor; answers when done."""
    log.critical("emergency kill by the admin process", extra={"actor": actor, "symbol": symbol})
    failed: list[str] = []
    live = _live(context, failed)
    symbols = [symbol] if symbol is not None else _raise_flag(context, detail, actor, live, failed)
    own_event = symbol is not None
    halted = [s for s in symbols if _halt(context, s, detail, actor, live.get(s), own_event)]
    failed += [f"HALTED state of {s}" for s in symbols if s not in halted]
    return KillOutcome(halted, _cancel(context, symbol), failed)


def _live(context: AdminContext, failed: list[str]) -> dict[str, dict[str, Any]]:
    try:
        return context.status.read_all()
    except RedisError:
        log.exception("live status unreadable: the risk event carries zero position and P&L")
        failed.append("live position and P&L")
        return {}


def _raise_flag(
    context: AdminContext,
    detail: str,
    actor: str,
    live: dict[str, dict[str, Any]],
    failed: list[str],
) -> list[str]:
    """The global flag and its one all-symbols event; returns every configured symbol."""
    position = sum((_money(s, "position_usdt") for s in live.values()), Decimal(0))
    pnl = sum((_money(s, "total_pnl_usdt") for s in live.values()), Decimal(0))
    symbols: list[str] = []
    try:
        with context.transaction() as session:
            if KillFlagRepository(session).set(RiskTrigger.MANUAL, reason=detail, actor=actor):
                record_risk_event(
                    session,
                    None,
                    RiskTrigger.MANUAL,
                    detail=detail,
                    position_usdt=position,
                    pnl_usdt=pnl,
                    shadow=context.settings.shadow_mode,
                )
            symbols = [c.symbol for c in ConfigRepository(session).list()]
    except SQLAlchemyError:
        log.exception("could not record the global kill flag")
        failed.append("global kill flag in PostgreSQL")
    try:
        context.status.set_kill_flag(detail, actor)
    except RedisError:
        log.exception("could not copy the global kill flag to Redis")
        failed.append("global kill flag copy in Redis")
    return symbols


def _halt(
    context: AdminContext,
    symbol: str,
    detail: str,
    actor: str,
    live: dict[str, Any] | None,
    own_risk_event: bool,
) -> bool:
    try:
        with context.transaction() as session:
            halt(
                session,
                symbol,
                RiskTrigger.MANUAL,
                detail=detail,
                actor=actor,
                shadow=context.settings.shadow_mode,
                position_usdt=_money(live, "position_usdt"),
                pnl_usdt=_money(live, "total_pnl_usdt"),
                publish_risk_event=own_risk_event,
            )
    except SQLAlchemyError:
        # One symbol's failure (its config deleted meanwhile) must not spare the others.
        log.exception("could not record HALTED", extra={"symbol": symbol})
        return False
    return True


def _cancel(context: AdminContext, symbol: str | None) -> bool | None:
    orders = context.orders()
    if orders is None:
        return None
    result = orders.cancel_until_flat(symbol, CANCEL_DEADLINE_S)
    if not result.flat:
        log.critical(
            "orders still open after the emergency kill's cancels",
            extra={"symbol": symbol, "remaining": result.remaining, "attempts": result.attempts},
        )
    return result.flat
