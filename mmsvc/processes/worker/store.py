"""The worker's PostgreSQL work, on its own session, mapped to the core's values.

Every write that matters commits before the worker acts on it: a PENDING order
row before its request (ARCHITECTURE D10), a fill with its position in one
transaction before the fill is acknowledged to the supervisor (D1), a state
change with its outbox event (D16). Every write but a kill's runs in a
transaction fenced by the worker's lease epoch (D26): a fenced-out worker's
write raises Fenced and commits nothing; HALTED is never refused (D30).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

from sqlalchemy.orm import Session, sessionmaker

from mmsvc.adapters.db import records as db
from mmsvc.adapters.db import transitions
from mmsvc.adapters.db.configs import ConfigRepository
from mmsvc.adapters.db.fills import FillRepository
from mmsvc.adapters.db.orders import OrderRepository
from mmsvc.adapters.db.positions import PositionRepository
from mmsvc.adapters.db.states import KillFlagRepository, StateRepository
from mmsvc.adapters.db.transitions import change_state, halt, record_risk_event
from mmsvc.domain.inventory import Inventory
from mmsvc.domain.model import (
    Fill,
    KillDecision,
    Liquidity,
    MMConfig,
    NewOrder,
    Order,
    OrderStatus,
    RiskTrigger,
    Side,
    SymbolState,
)
from mmsvc.domain.symbol_config import field_values


def config_from_record(record: db.ConfigRecord) -> MMConfig:
    """The core's config from an mm_configs row (the row is already validated by the model)."""
    return MMConfig(symbol=record.symbol, **field_values(record))


def _fill(record: db.Fill) -> Fill:
    return Fill(
        event_id=record.event_id,
        side=Side(record.side.value),
        price=record.price,
        quantity=record.quantity,
        fee=record.fee,
        fee_asset=record.fee_asset,
        liquidity=None if record.liquidity is None else Liquidity(record.liquidity.value),
        ts_ms=record.ts_ms,
    )


def _order(row: db.OrderRecord) -> Order:
    status = OrderStatus(row.status.value)
    if status is OrderStatus.PENDING:
        status = OrderStatus.UNKNOWN
    return Order(
        str(row.client_order_id),
        row.order_id,
        Side(row.side.value),
        row.price,
        row.quantity,
        filled=row.filled_quantity,
        status=status,
        awaiting_final_event=row.awaiting_final_event,
    )


@dataclass(frozen=True, slots=True)
class OrderStatusUpdate:
    """An order's new status as an answer or an event told it."""

    client_order_id: str
    status: str
    order_id: str | None = None
    reason: str | None = None
    filled: Decimal | None = None
    # True when the status comes from the order's final engine event (or a 4xx:
    # it never existed); only that settles a row and releases exposure (D31).
    final_event: bool = False


def _apply(repo: OrderRepository, update: OrderStatusUpdate) -> db.OrderUpdate | None:
    cid = uuid.UUID(update.client_order_id)
    if update.status == db.OrderStatus.UNKNOWN.value:
        return repo.mark_unknown(cid)
    return repo.apply_event(
        cid,
        db.OrderStatus(update.status),
        order_id=update.order_id,
        reject_reason=update.reason,
        filled_quantity=update.filled,
        final_event=update.final_event,
    )


class WriteFence(Protocol):
    """The lease's side the store needs (LeaseKeeper): its epoch and fenced transactions."""

    @property
    def epoch(self) -> int | None:
        """The epoch of the lease held, None when none is."""

    def transaction(self) -> AbstractContextManager[Session]:
        """A write transaction that checks the epoch first and commits on success (D26)."""


class Sessions(Protocol):
    """Where a worker module gets sessions: plain ones to read, `begin()` to write."""

    def __call__(self) -> Session:
        """A session for reads (no write is committed through it)."""

    def begin(self) -> AbstractContextManager[Session]:
        """A write transaction that commits on success."""


class FencedSessions:
    """Plain sessions for reads, the lease's fenced transaction for every write (D26)."""

    def __init__(self, sessions: sessionmaker[Session], fence: WriteFence) -> None:
        self._sessions = sessions
        self._fence = fence

    def __call__(self) -> Session:
        return self._sessions()

    def begin(self) -> AbstractContextManager[Session]:
        """Fenced by the lease's epoch: Fenced, and nothing written, once it is gone."""
        return self._fence.transaction()


class WorkerStore:
    """One symbol's reads and writes; each method is one committed transaction."""

    def __init__(
        self, sessions: sessionmaker[Session], symbol: str, *, shadow: bool, fence: WriteFence
    ) -> None:
        self._sessions = sessions
        self._fence = fence
        self.symbol = symbol
        self.shadow = shadow
        # Called before every write but the kill's own: a kill not yet recorded is
        # recorded first, or the write is not made (D25, D30). Set by the worker.
        self.before_write: Callable[[], None] = lambda: None

    def load_config(self) -> MMConfig | None:
        with self._sessions() as session:
            record = ConfigRepository(session).get(self.symbol)
        return None if record is None else config_from_record(record)

    def restart_state(self, *, keep: bool = False) -> tuple[SymbolState, list[RiskTrigger]]:
        """ACTIVE becomes PAUSED, HALTED stays HALTED with its trigger (D3).

        ``keep``: the symbol moved here from another host (D28, D29), so an
        ACTIVE one stays ACTIVE and quotes again once flat and fed.
        """
        with self._fence.transaction() as session:
            current = StateRepository(session).lock(self.symbol)
            if current is None or (current.state is db.SymbolState.ACTIVE and not keep):
                change_state(
                    session,
                    self.symbol,
                    db.SymbolState.PAUSED,
                    reason="worker (re)start: never auto-starts",
                    actor="system",
                    shadow=self.shadow,
                )
                return SymbolState.PAUSED, []
            triggers = [] if current.trigger is None else [RiskTrigger(current.trigger.value)]
            return SymbolState(current.state.value), triggers

    def rebuild_inventory(self, base_asset: str) -> tuple[Inventory, Decimal]:
        """Inventory rebuilt exactly from the fill history, and the fees paid so far."""
        with self._sessions() as session:
            fills = [_fill(f) for f in FillRepository(session).list_for_symbol(self.symbol)]
        inventory = Inventory.from_fills(self.symbol, base_asset, fills)
        return inventory, sum((inventory.fee_in_quote(f) for f in fills), Decimal(0))

    def global_kill_active(self) -> bool:
        with self._sessions() as session:
            return KillFlagRepository(session).get().active

    def insert_pending(self, orders: Iterable[tuple[str, NewOrder]]) -> None:
        """PENDING rows committed before any request is sent (D10)."""
        epoch = self._fence.epoch  # D32: each row names the lease that sent it
        rows = [
            db.NewOrder(
                uuid.UUID(cid),
                self.symbol,
                order.side,
                order.price,
                order.quantity,
                order.level,
                epoch,
            )
            for cid, order in orders
        ]
        if rows:
            self.before_write()
            with self._fence.transaction() as session:
                OrderRepository(session).insert_pending_many(rows)

    def order_status(
        self,
        client_order_id: str,
        status: str,
        *,
        order_id: str | None = None,
        reason: str | None = None,
        filled: Decimal | None = None,
        final_event: bool = False,
    ) -> db.OrderUpdate | None:
        """Move an order forward (never backward); None when the order is not in our table."""
        update = OrderStatusUpdate(client_order_id, status, order_id, reason, filled, final_event)
        return self.order_statuses([update])[0]

    def order_statuses(self, updates: list[OrderStatusUpdate]) -> list[db.OrderUpdate | None]:
        """Several orders moved forward in one transaction (a batch's answers at once)."""
        self.before_write()
        with self._fence.transaction() as session:
            repo = OrderRepository(session)
            return [_apply(repo, update) for update in updates]

    def unsettled_order_ids(self) -> list[uuid.UUID]:
        """Rows open or awaiting their final engine event: a config DELETE waits (D31)."""
        with self._sessions() as session:
            return [o.client_order_id for o in OrderRepository(session).unsettled(self.symbol)]

    def live_orders(self) -> list[Order]:
        """The symbol's unsettled rows as the core's orders, to keep their exposure (D31).

        A row still PENDING was perhaps sent and never answered: it is UNKNOWN.
        """
        with self._sessions() as session:
            rows = OrderRepository(session).unsettled(self.symbol)
        return [_order(row) for row in rows]

    def record_fill(
        self,
        fill: Fill,
        event: dict[str, object],
        inventory: Inventory | None,
        fees_paid: Decimal,
    ) -> bool:
        """The fill row and the position after it, in one transaction; False if seen before.

        With ``inventory`` None (the instrument not known yet) only the fill row
        is written: the position is rebuilt from the rows once it is (D1: a fill
        is never dropped).
        """
        self.before_write()
        with self._fence.transaction() as session:
            new = FillRepository(session).insert_if_new(self._fill_row(fill, event))
            if not new:
                return False
            self._apply_fill_to_order(session, event)
            if inventory is not None:
                PositionRepository(session).upsert(
                    db.PositionRecord(
                        self.symbol,
                        inventory.quantity,
                        inventory.avg_entry or Decimal(0),
                        inventory.realized_pnl,
                        fees_paid,
                    )
                )
        return True

    def _fill_row(self, fill: Fill, event: dict[str, object]) -> db.Fill:
        liquidity = None if fill.liquidity is None else db.Liquidity(fill.liquidity.value)
        return db.Fill(
            fill.event_id,
            self.symbol,
            str(event["order_id"]),
            str(event["client_order_id"]),
            db.Side(fill.side.value),
            fill.price,
            fill.quantity,
            fill.fee,
            fill.fee_asset,
            liquidity,
            fill.ts_ms,
        )

    def _apply_fill_to_order(self, session: Session, event: dict[str, object]) -> None:
        try:
            cid = uuid.UUID(str(event["client_order_id"]))
        except ValueError:
            return  # not an id of ours: the fill still counts, the order row does not exist
        remaining = Decimal(str(event["remaining_quantity"]))
        quantity = Decimal(str(event["quantity"]))
        status = db.OrderStatus.FILLED if remaining <= 0 else db.OrderStatus.PARTIALLY_FILLED
        OrderRepository(session).apply_event(
            cid,
            status,
            filled_quantity=quantity - remaining,
            order_id=str(event["order_id"]),
            final_event=remaining <= 0,
        )

    def recorded_state(self) -> tuple[SymbolState, list[RiskTrigger]]:
        """The state and trigger the row holds now (a kill recorded by others: D23, D30)."""
        with self._sessions() as session:
            current = StateRepository(session).get(self.symbol)
        if current is None:
            return SymbolState.PAUSED, []
        triggers = [] if current.trigger is None else [RiskTrigger(current.trigger.value)]
        return SymbolState(current.state.value), triggers

    def enable(self, *, actor: str) -> MMConfig | None:
        """enabled=true and ACTIVE together, under the guard (D23); the refreshed config."""
        self.before_write()
        with self._fence.transaction() as session:
            transitions.activate(
                session, self.symbol, reason="enable", actor=actor, shadow=self.shadow
            )
            ConfigRepository(session).update(self.symbol, actor, {"enabled": True})
        return self.load_config()

    def resume(self, *, actor: str) -> None:
        """ACTIVE under the guard: the row PAUSED and no kill flag (D23, D30)."""
        self.before_write()
        with self._fence.transaction() as session:
            transitions.activate(
                session, self.symbol, reason="resume", actor=actor, shadow=self.shadow
            )

    def pause(self, *, reason: str, actor: str) -> None:
        """PAUSED; refused (TransitionRefusedError) while the row is HALTED."""
        self.before_write()
        with self._fence.transaction() as session:
            transitions.pause(session, self.symbol, reason=reason, actor=actor, shadow=self.shadow)

    def reset(self, *, actor: str) -> None:
        """HALTED -> PAUSED, the only way out of HALTED (D9, D23)."""
        self.before_write()
        with self._fence.transaction() as session:
            transitions.reset(session, self.symbol, actor=actor, shadow=self.shadow)

    def halt(
        self, kill: KillDecision, *, actor: str, position: Decimal, pnl: Decimal, publish: bool
    ) -> bool:
        """HALTED with its trigger and (unless a global kill) its risk event (D7).

        Not fenced: a kill always lands, whoever holds the lease (D30).
        """
        with self._sessions.begin() as session:
            change = halt(
                session,
                self.symbol,
                db.RiskTrigger(kill.trigger.value),
                detail=kill.detail,
                actor=actor,
                shadow=self.shadow,
                position_usdt=position,
                pnl_usdt=pnl,
                publish_risk_event=publish,
            )
        return change.changed

    def stale_episode(self, detail: str, position: Decimal, pnl: Decimal) -> None:
        """One STALE_DATA risk event per episode; it halts nothing (D7)."""
        self.before_write()
        with self._fence.transaction() as session:
            record_risk_event(
                session,
                self.symbol,
                db.RiskTrigger.STALE_DATA,
                detail=detail,
                position_usdt=position,
                pnl_usdt=pnl,
                shadow=self.shadow,
            )
