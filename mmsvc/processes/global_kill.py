"""The kill switch's records and cancels, one routine for the supervisor and the admin (D7, D3).

A kill of every symbol (KAFKA_LAG, or MANUAL without a symbol) is: the global
flag in PostgreSQL (its authority) with one ``mm.risk.triggered.v1`` of null
symbol in the outbox, the flag's Redis copy, each symbol HALTED with its
state-change event (no risk event of its own), and the account's orders
canceled at the Order Service until it lists none. A one-symbol kill is that
symbol HALTED with its own risk event and its orders canceled.

The supervisor raises the flag here and lets connected workers record their
own HALTED (they know their position), halting here only the ones that did not
answer; the admin process does it all here when the supervisor cannot (D7).
Every step is idempotent, so both running it records nothing twice. A step that
fails (PostgreSQL or Redis down) never stops the next: orders are canceled
whatever could or could not be recorded, and the outcome says what was not.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from mmsvc.adapters.db.configs import ConfigRepository
from mmsvc.adapters.db.records import RiskTrigger
from mmsvc.adapters.db.states import KillFlagRepository
from mmsvc.adapters.db.transitions import halt, record_risk_event
from mmsvc.adapters.order_service.client import OrderServiceClient
from mmsvc.adapters.status.redis_store import StatusStore

log = logging.getLogger(__name__)

CANCEL_DEADLINE_S = 10.0

Transaction = Callable[[], AbstractContextManager[Session]]
LiveStatus = Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class Kill:
    """What is being killed and why; symbol None is every symbol."""

    trigger: RiskTrigger
    detail: str
    actor: str
    symbol: str | None = None


@dataclass(frozen=True, slots=True)
class KillOutcome:
    """What a kill did; orders_flat is None when no Order Service call was made (shadow, D18)."""

    halted: list[str]
    orders_flat: bool | None
    not_recorded: list[str] = field(default_factory=list)

    @property
    def undone(self) -> list[str]:
        """What PostgreSQL did not take; Redis is a cache, its misses undo nothing (D25)."""
        return [item for item in self.not_recorded if "Redis" not in item]


@dataclass(slots=True)
class KillSwitch:
    """The adapters a kill needs; shared by the supervisor and the admin process."""

    transaction: Transaction
    status: StatusStore
    orders: OrderServiceClient | None
    shadow: bool

    def kill(self, kill: Kill) -> KillOutcome:
        """The whole kill, here and now: flag (if global), HALTED, cancels until flat."""
        failed: list[str] = []
        live = self.live(failed)
        if kill.symbol is None:
            self.raise_flag(kill, live, failed)
            symbols = self.configured(failed)
        else:
            symbols = [kill.symbol]
        halted = self.halt(kill, symbols, live, failed)
        return KillOutcome(halted, self.cancel(kill.symbol), failed)

    def live(self, failed: list[str]) -> LiveStatus:
        """Every symbol's live status from Redis, or nothing when Redis cannot say."""
        live = self.status.read_all()
        if live is None:
            log.error("live status unreadable: the risk event carries zero position and P&L")
            failed.append("live position and P&L (Redis)")
            return {}
        return live

    def raise_flag(self, kill: Kill, live: LiveStatus, failed: list[str]) -> bool:
        """The global flag with its one all-symbols risk event, then its Redis copy (D3, D7).

        True when this call set the flag (False: it was already set, or not recorded).
        """
        position, pnl = totals(live)
        raised = False
        try:
            with self.transaction() as session:
                raised = KillFlagRepository(session).set(
                    kill.trigger, reason=kill.detail, actor=kill.actor
                )
                if raised:
                    record_risk_event(
                        session,
                        None,
                        kill.trigger,
                        detail=kill.detail,
                        position_usdt=position,
                        pnl_usdt=pnl,
                        shadow=self.shadow,
                    )
        except SQLAlchemyError:
            log.exception("could not record the global kill flag")
            failed.append("global kill flag in PostgreSQL")
        if not self.status.set_kill_flag(kill.detail, kill.actor):
            # PostgreSQL's flag is the authority; the supervisor copies it again
            # once Redis answers (D25).
            log.error("could not copy the global kill flag to Redis")
            failed.append("global kill flag copy in Redis")
        log.critical(
            "global kill switch", extra={"trigger": kill.trigger.value, "detail": kill.detail}
        )
        return raised

    def configured(self, failed: list[str]) -> list[str]:
        """Every configured symbol (a global kill halts them all)."""
        try:
            with self.transaction() as session:
                return [c.symbol for c in ConfigRepository(session).list()]
        except SQLAlchemyError:
            log.exception("could not list the symbols to halt")
            failed.append("list of symbols")
            return []

    def halt(
        self, kill: Kill, symbols: Iterable[str], live: LiveStatus, failed: list[str]
    ) -> list[str]:
        """Each symbol HALTED with the kill's trigger; its own risk event only if one-symbol."""
        halted: list[str] = []
        for symbol in symbols:
            status = live.get(symbol)
            try:
                with self.transaction() as session:
                    halt(
                        session,
                        symbol,
                        kill.trigger,
                        detail=kill.detail,
                        actor=kill.actor,
                        shadow=self.shadow,
                        position_usdt=money(status, "position_usdt"),
                        pnl_usdt=money(status, "total_pnl_usdt"),
                        publish_risk_event=kill.symbol is not None,
                    )
            except SQLAlchemyError:
                # One symbol's failure (its config deleted meanwhile) must not spare the others.
                log.exception("could not record HALTED", extra={"symbol": symbol})
                failed.append(f"HALTED state of {symbol}")
                continue
            halted.append(symbol)
        return halted

    def cancel(self, symbol: str | None, deadline_s: float = CANCEL_DEADLINE_S) -> bool | None:
        """Cancel the symbol's (None: the account's) orders until the venue lists none (D7)."""
        if self.orders is None:
            return None
        result = self.orders.cancel_until_flat(symbol, deadline_s)
        if not result.flat:
            log.critical(
                "orders still open after the kill's cancels",
                extra={
                    "symbol": symbol,
                    "remaining": result.remaining,
                    "attempts": result.attempts,
                },
            )
        return result.flat


def money(status: Mapping[str, Any] | None, key: str) -> Decimal:
    """A money field of a live status, zero when missing or not a finite number."""
    try:
        value = Decimal(str((status or {}).get(key, "0")))
    except InvalidOperation:
        return Decimal(0)
    return value if value.is_finite() else Decimal(0)


def totals(live: LiveStatus) -> tuple[Decimal, Decimal]:
    """Summed position and P&L of every symbol, for the all-symbols risk event (D7)."""
    position = sum((money(s, "position_usdt") for s in live.values()), Decimal(0))
    pnl = sum((money(s, "total_pnl_usdt") for s in live.values()), Decimal(0))
    return position, pnl
