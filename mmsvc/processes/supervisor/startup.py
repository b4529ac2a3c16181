"""The supervisor's start-up, exactly as the spec orders it ("Startup Behavior").

1. Load every config. 2. Load the open orders. 3. Rebuild inventory from the
fill history (each worker does this for its symbol as it starts; here we only
report the count). 4. Set every symbol PAUSED (ACTIVE becomes PAUSED, HALTED
stays HALTED with its trigger: ARCHITECTURE D3), each real change recorded and
announced through the outbox. 5. Cancel the orders found open, because nothing
is known about them after a restart ("cancel all orders on ANY uncertainty"),
and record the outcome. Then the caller spawns workers and subscribes. Market
making never starts by itself.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from mmsvc.adapters.db.configs import ConfigRepository
from mmsvc.adapters.db.orders import OrderRepository
from mmsvc.adapters.db.records import OrderStatus, SymbolState
from mmsvc.adapters.db.states import StateRepository
from mmsvc.adapters.db.transitions import announce_state, change_state
from mmsvc.adapters.order_service.client import OrderServiceClient

log = logging.getLogger(__name__)

STARTUP_REASON = "service start-up: never auto-starts (spec)"
CANCEL_DEADLINE_S = 10.0


@dataclass(frozen=True, slots=True)
class StartupReport:
    """What start-up found and did, logged for operators."""

    symbols: list[str]
    paused: list[str]
    open_orders: int
    flat: bool


def pause_everything(
    sessions: sessionmaker[Session], *, shadow: bool
) -> tuple[list[str], list[str]]:
    """Every configured symbol PAUSED or still HALTED; returns (symbols, those paused now)."""
    with sessions.begin() as session:
        symbols = [config.symbol for config in ConfigRepository(session).list()]
        states = StateRepository(session)
        known = {record.symbol for record in states.list()}
        paused = states.set_all_paused_at_startup(reason=STARTUP_REASON)
        for symbol in paused:
            announce_state(
                session,
                symbol,
                SymbolState.ACTIVE,
                SymbolState.PAUSED,
                STARTUP_REASON,
                "system",
                shadow,
            )
        for symbol in sorted(set(symbols) - known):
            change_state(
                session,
                symbol,
                SymbolState.PAUSED,
                reason=STARTUP_REASON,
                actor="system",
                shadow=shadow,
            )
    return symbols, paused


def open_order_count(sessions: sessionmaker[Session], symbols: list[str]) -> int:
    """Orders the database believes may still rest on the book."""
    with sessions() as session:
        orders = OrderRepository(session)
        return sum(len(orders.list_open(symbol)) for symbol in symbols)


def cancel_uncertain_orders(
    sessions: sessionmaker[Session], client: OrderServiceClient, symbols: list[str]
) -> bool:
    """Cancel-all for the account until the Order Service confirms none is open (D7)."""
    result = client.cancel_until_flat(None, deadline_s=CANCEL_DEADLINE_S)
    if result.flat:
        with sessions.begin() as session:
            orders = OrderRepository(session)
            for symbol in symbols:
                for order in orders.list_open(symbol):
                    orders.apply_event(order.client_order_id, OrderStatus.CANCELED)
    return result.flat


def run_startup(
    sessions: sessionmaker[Session], client: OrderServiceClient | None, *, shadow: bool
) -> StartupReport:
    """Steps 1-5 of the spec's start-up; ``client`` is None in shadow mode (D18)."""
    symbols, paused = pause_everything(sessions, shadow=shadow)
    open_orders = open_order_count(sessions, symbols)
    flat = True
    if client is not None:
        flat = cancel_uncertain_orders(sessions, client, symbols)
        if not flat:
            log.error("start-up could not confirm that every order is canceled")
    report = StartupReport(symbols, paused, open_orders, flat)
    log.info(
        "start-up complete: every symbol PAUSED or HALTED",
        extra={
            "symbols": len(symbols),
            "paused_now": paused,
            "open_orders_found": open_orders,
            "flat": flat,
        },
    )
    return report
