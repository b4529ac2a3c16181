"""The PostgreSQL tables of mmsvc (spec: Database Schema), as SQLAlchemy 2 models.

Money, prices and quantities are NUMERIC and come back as Decimal; no float
column exists. CHECK constraints refuse rows no code path should ever write,
so a bug surfaces as an IntegrityError instead of a silently wrong position.
The alembic migrations (0001, 0005_leases) create exactly these tables; a test
compares the two.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from mmsvc.adapters.db.config_table import config_checks, config_columns
from mmsvc.adapters.db.records import (
    GLOBAL_KILL_TRIGGERS,
    KILL_TRIGGERS,
    OPEN_STATUSES,
    Liquidity,
    OrderStatus,
    Side,
    SymbolState,
)
from mmsvc.domain.symbol_config import SYMBOL_PATTERN

PUBLISHED_TOPICS = ("mm.state.changed.v1", "mm.risk.triggered.v1", "mm.quote.simulated.v1")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def one_of(column: str, values: Iterable[str]) -> str:
    """SQL text true when `column` holds one of `values` (values are our own enum literals)."""
    listed = ", ".join(f"'{value}'" for value in sorted(values))
    return f"{column} IN ({listed})"


def finite(*columns: str) -> tuple[CheckConstraint, ...]:
    """CHECKs that refuse NaN and +-Infinity in NUMERIC columns (D24: refused in PostgreSQL too)."""
    return tuple(
        CheckConstraint(
            f"{c} <> 'NaN' AND {c} <> 'Infinity' AND {c} <> '-Infinity'", name=f"{c}_finite"
        )
        for c in columns
    )


def _values(enum: type[StrEnum]) -> list[str]:
    return [member.value for member in enum]


OPEN_STATUS_SQL = one_of("status", OPEN_STATUSES)


class Base(DeclarativeBase):
    """Declarative base: NUMERIC for Decimal, timestamptz for datetime, JSONB for dicts."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {
        Decimal: Numeric(),
        datetime: DateTime(timezone=True),
        dict[str, Any]: JSONB(),
    }


def _money(default: str | None = None) -> Mapped[Decimal]:
    return mapped_column(server_default=text(default) if default is not None else None)


def _created() -> Mapped[datetime]:
    return mapped_column(server_default=func.now())


class MMConfig(Base):
    """mm_configs: one row per symbol; the config columns are generated from the model below."""

    __tablename__ = "mm_configs"
    __table_args__ = (
        CheckConstraint(f"symbol ~ '{SYMBOL_PATTERN}'", name="symbol_format"),
        # One CHECK per numeric field, from the model's bounds (issue 11).
        *config_checks(),
        CheckConstraint("updated_by <> ''", name="updated_by_not_empty"),
    )

    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()
    updated_by: Mapped[str] = mapped_column(Text, server_default=text("'system'"))


# The settable fields, as the config model defines them (one definition: issue 11).
for _name, _column in config_columns().items():
    setattr(MMConfig, _name, _column)


class MMState(Base):
    """mm_states: a symbol's state; a HALTED symbol carries the trigger that halted it (D3)."""

    __tablename__ = "mm_states"
    __table_args__ = (
        CheckConstraint(one_of("state", _values(SymbolState)), name="state_known"),
        CheckConstraint(one_of("trigger", KILL_TRIGGERS), name="trigger_known"),
        # HALTED exactly when a kill switch holds it: a reset clears both (D3, D9).
        CheckConstraint("(state = 'HALTED') = (trigger IS NOT NULL)", name="halted_has_trigger"),
        CheckConstraint(
            "trigger IS NOT NULL OR trigger_detail IS NULL", name="detail_needs_trigger"
        ),
        CheckConstraint("actor <> ''", name="actor_not_empty"),
    )

    symbol: Mapped[str] = mapped_column(
        String(32), ForeignKey("mm_configs.symbol", ondelete="CASCADE"), primary_key=True
    )
    state: Mapped[str] = mapped_column(String(16), server_default=text("'PAUSED'"))
    trigger: Mapped[str | None] = mapped_column(String(32))
    trigger_detail: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text, server_default=text("''"))
    actor: Mapped[str] = mapped_column(Text, server_default=text("'system'"))
    updated_at: Mapped[datetime] = _created()


class MMKillSwitch(Base):
    """mm_kill_switch: the one-row global kill flag, kept here so no restart clears it (D3)."""

    __tablename__ = "mm_kill_switch"
    __table_args__ = (
        CheckConstraint("id = 1", name="single_row"),
        CheckConstraint(one_of("trigger", GLOBAL_KILL_TRIGGERS), name="trigger_known"),
        CheckConstraint("active = (trigger IS NOT NULL)", name="active_has_trigger"),
        CheckConstraint("actor <> ''", name="actor_not_empty"),
    )

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, server_default=text("1"))
    active: Mapped[bool] = mapped_column(server_default=text("false"))
    trigger: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text, server_default=text("''"))
    actor: Mapped[str] = mapped_column(Text, server_default=text("'system'"))
    updated_at: Mapped[datetime] = _created()


class MMPosition(Base):
    """mm_positions: a symbol's signed position and P&L, derivable from mm_fills."""

    __tablename__ = "mm_positions"
    __table_args__ = (
        CheckConstraint("avg_entry_price >= 0", name="avg_entry_price_not_negative"),
        *finite("quantity", "avg_entry_price", "realized_pnl", "fees_paid"),
    )

    # No foreign key: the money record outlives a deleted config, as the fills do.
    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    quantity: Mapped[Decimal] = _money("0")
    avg_entry_price: Mapped[Decimal] = _money("0")
    realized_pnl: Mapped[Decimal] = _money("0")
    # Negative when rebates exceed fees.
    fees_paid: Mapped[Decimal] = _money("0")
    updated_at: Mapped[datetime] = _created()


class MMOrder(Base):
    """mm_orders: every order mmsvc sent, written PENDING before the request (D10)."""

    __tablename__ = "mm_orders"
    __table_args__ = (
        CheckConstraint(one_of("side", _values(Side)), name="side_known"),
        CheckConstraint(one_of("status", _values(OrderStatus)), name="status_known"),
        CheckConstraint("price > 0", name="price_positive"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("filled_quantity >= 0", name="filled_quantity_not_negative"),
        CheckConstraint("filled_quantity <= quantity", name="filled_within_quantity"),
        CheckConstraint("status <> 'FILLED' OR filled_quantity = quantity", name="filled_is_full"),
        CheckConstraint("level >= 0", name="level_not_negative"),
        *finite("price", "quantity", "filled_quantity"),
        Index("ix_mm_orders_open_by_symbol", "symbol", postgresql_where=text(OPEN_STATUS_SQL)),
    )

    client_order_id: Mapped[UUID] = mapped_column(primary_key=True)
    order_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    symbol: Mapped[str] = mapped_column(String(32))
    side: Mapped[str] = mapped_column(String(4))
    price: Mapped[Decimal] = _money()
    quantity: Mapped[Decimal] = _money()
    filled_quantity: Mapped[Decimal] = _money("0")
    status: Mapped[str] = mapped_column(String(16), server_default=text("'PENDING'"))
    level: Mapped[int] = mapped_column(SmallInteger)
    reject_reason: Mapped[str | None] = mapped_column(Text)
    # D31: true until the order's final engine event (or an answer that it never
    # existed); a DELETE's 200 makes it CANCELED but leaves it awaiting.
    awaiting_final_event: Mapped[bool] = mapped_column(server_default=text("true"))
    # D32: the lease epoch of the worker that wrote the row PENDING (NULL: no lease).
    epoch: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = _created()
    updated_at: Mapped[datetime] = _created()


class MMFill(Base):
    """mm_fills: fill history, at most one row per engine event_id (D1)."""

    __tablename__ = "mm_fills"
    __table_args__ = (
        CheckConstraint(one_of("side", _values(Side)), name="side_known"),
        CheckConstraint(one_of("liquidity", _values(Liquidity)), name="liquidity_known"),
        CheckConstraint("price > 0", name="price_positive"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("ts_ms >= 0", name="ts_ms_not_negative"),
        CheckConstraint("event_id <> ''", name="event_id_not_empty"),
        *finite("price", "quantity", "fee"),
        Index("ix_mm_fills_symbol_ts", "symbol", "ts_ms", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(128), unique=True)
    symbol: Mapped[str] = mapped_column(String(32))
    order_id: Mapped[str] = mapped_column(String(64))
    # Text, not UUID: a fill is never refused over the shape of an id (D1).
    client_order_id: Mapped[str] = mapped_column(String(64))
    side: Mapped[str] = mapped_column(String(4))
    price: Mapped[Decimal] = _money()
    quantity: Mapped[Decimal] = _money()
    # Negative for a rebate (CONTRACTS.md engine.event.v1).
    fee: Mapped[Decimal] = _money("0")
    fee_asset: Mapped[str | None] = mapped_column(String(16))
    liquidity: Mapped[str | None] = mapped_column(String(5))
    ts_ms: Mapped[int] = mapped_column(BigInteger)
    recorded_at: Mapped[datetime] = _created()


class Outbox(Base):
    """outbox: events to publish, written in the transaction that decided them (D16)."""

    __tablename__ = "outbox"
    __table_args__ = (
        CheckConstraint(one_of("topic", PUBLISHED_TOPICS), name="topic_published"),
        Index("ix_outbox_unsent", "id", postgresql_where=text("sent_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    topic: Mapped[str] = mapped_column(String(255))
    # Null only for a risk event that covers every symbol (CONTRACTS.md).
    key: Mapped[str | None] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime] = _created()
    sent_at: Mapped[datetime | None]


class MMAudit(Base):
    """mm_audit: who changed what and when (config writes, limit raises, kill flag: D5)."""

    __tablename__ = "mm_audit"
    __table_args__ = (
        CheckConstraint("actor <> ''", name="actor_not_empty"),
        CheckConstraint("action <> ''", name="action_not_empty"),
        Index("ix_mm_audit_symbol_id", "symbol", "id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    ts: Mapped[datetime] = _created()
    actor: Mapped[str] = mapped_column(Text)
    action: Mapped[str] = mapped_column(String(64))
    symbol: Mapped[str | None] = mapped_column(String(32))
    detail: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))


DEAD_LETTER_HOW = ("discard", "replay")


class MMDeadLetter(Base):
    """mm_dead_letters: must-deliver messages whose content cannot be applied (D24, D31).

    The message's bytes and position are kept so it can be replayed; an
    uncleared row holds its symbol's quotes (the hold survives restarts).
    Clearing is a replay or an audited discard, by an operator.
    """

    __tablename__ = "mm_dead_letters"
    __table_args__ = (
        CheckConstraint(one_of("cleared_how", DEAD_LETTER_HOW), name="cleared_how_known"),
        CheckConstraint("(cleared_at IS NULL) = (cleared_how IS NULL)", name="cleared_has_how"),
        CheckConstraint("(cleared_at IS NULL) = (cleared_by IS NULL)", name="cleared_has_actor"),
        CheckConstraint("cleared_by <> ''", name="cleared_by_not_empty"),
        CheckConstraint("reason <> ''", name="reason_not_empty"),
        CheckConstraint(
            "replayed_at IS NULL OR cleared_how = 'replay'", name="replayed_only_on_replay"
        ),
        Index(
            "ix_mm_dead_letters_uncleared_symbol",
            "symbol",
            postgresql_where=text("cleared_at IS NULL"),
        ),
        # One uncleared row per message: a redelivery after a crash adds none.
        Index(
            "uq_mm_dead_letters_uncleared_message",
            "topic",
            "kafka_partition",
            "kafka_offset",
            unique=True,
            postgresql_where=text("cleared_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    symbol: Mapped[str] = mapped_column(String(32))
    topic: Mapped[str] = mapped_column(String(255))
    kafka_partition: Mapped[int] = mapped_column(Integer)
    kafka_offset: Mapped[int] = mapped_column(BigInteger)
    key: Mapped[str | None] = mapped_column(Text)
    value: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(String(64))
    detail: Mapped[str] = mapped_column(Text, server_default=text("''"))
    created_at: Mapped[datetime] = _created()
    cleared_at: Mapped[datetime | None]
    cleared_by: Mapped[str | None] = mapped_column(Text)
    cleared_how: Mapped[str | None] = mapped_column(String(16))
    clear_reason: Mapped[str | None] = mapped_column(Text)
    replayed_at: Mapped[datetime | None]


class MMLease(Base):
    """mm_leases: who may quote a symbol, until when, under which fencing epoch (D26, D32).

    No foreign key to mm_configs: a lease outlives a deleted config, so an
    epoch never restarts at 1 and a late write of an old owner stays fenced.
    """

    __tablename__ = "mm_leases"
    __table_args__ = (
        CheckConstraint("owner <> ''", name="owner_not_empty"),
        CheckConstraint("epoch >= 1", name="epoch_positive"),
    )

    symbol: Mapped[str] = mapped_column(String(32), primary_key=True)
    owner: Mapped[str] = mapped_column(Text)
    epoch: Mapped[int] = mapped_column(BigInteger)
    taken_at: Mapped[datetime] = _created()
    # On PostgreSQL's clock (D32): every check compares it with the server's time.
    lease_expires_at: Mapped[datetime]
    released_at: Mapped[datetime | None]


class MMCommand(Base):
    """mm_commands: an admin command for the supervisor of another host, and its answer (D28).

    The admin process of any host inserts a row naming the host whose lease
    holds the symbol and NOTIFYs; that host's supervisor claims it
    (``taken_at``), runs it as a control-channel request and writes the
    answer. A row answered before anyone took it was given up by its admin.
    """

    __tablename__ = "mm_commands"
    __table_args__ = (
        CheckConstraint("command <> ''", name="command_not_empty"),
        CheckConstraint("target_host <> ''", name="target_host_not_empty"),
        CheckConstraint("(answered_at IS NULL) = (status IS NULL)", name="answered_has_status"),
        Index(
            "ix_mm_commands_unanswered_target",
            "target_host",
            "id",
            postgresql_where=text("answered_at IS NULL"),
        ),
        Index("ix_mm_commands_created_at", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    symbol: Mapped[str | None] = mapped_column(String(32))
    command: Mapped[str] = mapped_column(String(32))
    actor: Mapped[str] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(Text)
    args: Mapped[dict[str, Any]] = mapped_column(server_default=text("'{}'::jsonb"))
    target_host: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = _created()
    taken_at: Mapped[datetime | None]
    status: Mapped[int | None] = mapped_column(SmallInteger)
    answer: Mapped[dict[str, Any] | None]
    answered_at: Mapped[datetime | None]
