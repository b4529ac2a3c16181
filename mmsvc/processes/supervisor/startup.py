"""The supervisor's start-up: the spec's steps, applied per symbol by its owner (D28, D29).

The spec's start-up (load configs, load open orders, rebuild inventory, set
every symbol PAUSED, cancel what was open) is kept, but with several
supervisors sharing the symbols a supervisor touches only the symbols whose
leases it holds (D29): pausing or canceling the whole account at one
host's start would stop the other hosts' markets. So here only steps 1-2 run
and a symbol that never had a state row gets one, PAUSED. Steps 3-5 run in
each worker as it takes its symbol's lease: it rebuilds its inventory from the
fill history, records PAUSED (ACTIVE only for a symbol moved here from another
host, D28), and cancels the symbol's open orders before its first place (D32).
Market making never starts by itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from mmsvc.adapters.db.configs import ConfigRepository
from mmsvc.adapters.db.orders import OrderRepository
from mmsvc.adapters.db.records import SymbolState
from mmsvc.adapters.db.states import StateRepository
from mmsvc.adapters.db.transitions import change_state

log = logging.getLogger(__name__)

STARTUP_REASON = "service start-up: never auto-starts (spec)"


@dataclass(frozen=True, slots=True)
class StartupReport:
    """What start-up found and did, logged for operators."""

    symbols: list[str]
    created: list[str]
    open_orders: int


def record_new_symbols(
    sessions: sessionmaker[Session], *, shadow: bool
) -> tuple[list[str], list[str]]:
    """Every configured symbol has a state row (new ones PAUSED); returns (symbols, created)."""
    with sessions.begin() as session:
        symbols = [config.symbol for config in ConfigRepository(session).list()]
        known = {record.symbol for record in StateRepository(session).list()}
        created = sorted(set(symbols) - known)
        for symbol in created:
            change_state(
                session,
                symbol,
                SymbolState.PAUSED,
                reason=STARTUP_REASON,
                actor="system",
                shadow=shadow,
            )
    return symbols, created


def open_order_count(sessions: sessionmaker[Session], symbols: list[str]) -> int:
    """Orders the database believes may still rest on the book."""
    with sessions() as session:
        orders = OrderRepository(session)
        return sum(len(orders.list_open(symbol)) for symbol in symbols)


def run_startup(sessions: sessionmaker[Session], *, shadow: bool) -> StartupReport:
    """Steps 1-2 of the spec's start-up; the workers of the symbols we are assigned do 3-5."""
    symbols, created = record_new_symbols(sessions, shadow=shadow)
    report = StartupReport(symbols, created, open_order_count(sessions, symbols))
    log.info(
        "start-up complete: each symbol's worker pauses it and cancels its orders (D29)",
        extra={
            "symbols": len(symbols),
            "new_symbols": created,
            "open_orders_found": report.open_orders,
        },
    )
    return report
