"""The initial schema: configs, states, the global kill flag, positions, orders, fills, outbox, audit.

Revision ID: 0001
Revises:
Create Date: 2026-11-25

Written out in full rather than imported from the models, so this revision
keeps meaning what it meant when later ones change the models; a test checks
that head and the models agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIDES = "('BUY', 'SELL')"
STATES = "('ACTIVE', 'HALTED', 'PAUSED')"
# STALE_DATA halts nothing (ARCHITECTURE D7), so no HALTED symbol carries it.
KILL_TRIGGERS = (
    "('EXPOSURE', 'KAFKA_LAG', 'LOSS', 'MANUAL', 'MARKET_HALT', 'REJECT_STORM', 'RESPONSE_TIMEOUT')"
)
STATUSES = (
    "('CANCELED', 'EXPIRED', 'FILLED', 'NEW', 'PARTIALLY_FILLED', 'PENDING', 'REJECTED', 'UNKNOWN')"
)
OPEN_STATUSES = "('NEW', 'PARTIALLY_FILLED', 'PENDING', 'UNKNOWN')"
TOPICS = "('mm.quote.simulated.v1', 'mm.risk.triggered.v1', 'mm.state.changed.v1')"


def _now(name: str) -> sa.Column[Any]:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def _numeric(name: str, default: str | None = None) -> sa.Column[Any]:
    server_default = None if default is None else sa.text(default)
    return sa.Column(name, sa.Numeric(), server_default=server_default, nullable=False)


def _text(name: str, default: str) -> sa.Column[Any]:
    return sa.Column(name, sa.Text(), server_default=sa.text(default), nullable=False)


def _check(condition: str, name: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(condition, name=op.f(name))


def _bigserial() -> sa.Column[Any]:
    return sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False)


def _create_configs() -> None:
    op.create_table(
        "mm_configs",
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("enabled", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        _numeric("base_spread_bps", "10.0"),
        _numeric("order_size_usdt", "100.0"),
        _numeric("inventory_skew_factor", "0.5"),
        _numeric("max_position_usdt", "10000.0"),
        _numeric("max_loss_usdt", "500.0"),
        sa.Column(
            "volatility_multiplier", sa.Boolean(), server_default=sa.text("true"), nullable=False
        ),
        sa.Column("num_levels", sa.Integer(), server_default=sa.text("1"), nullable=False),
        _numeric("level_spacing_bps", "5.0"),
        sa.Column("check_staleness", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        _numeric("staleness_threshold_ms", "1000.0"),
        _numeric("quote_interval_ms", "100.0"),
        _numeric("price_threshold_bps", "5.0"),
        _now("created_at"),
        _now("updated_at"),
        _text("updated_by", "'system'"),
        sa.PrimaryKeyConstraint("symbol", name=op.f("pk_mm_configs")),
        _check("symbol ~ '^[A-Z0-9]{2,16}(-[A-Z0-9]{2,16})?$'", "ck_mm_configs_symbol_format"),
        _check("base_spread_bps >= 0", "ck_mm_configs_base_spread_bps_not_negative"),
        _check("order_size_usdt > 0", "ck_mm_configs_order_size_usdt_positive"),
        _check("inventory_skew_factor >= 0", "ck_mm_configs_inventory_skew_factor_not_negative"),
        _check("max_position_usdt > 0", "ck_mm_configs_max_position_usdt_positive"),
        _check("max_loss_usdt >= 0", "ck_mm_configs_max_loss_usdt_not_negative"),
        _check("num_levels >= 1", "ck_mm_configs_num_levels_at_least_one"),
        _check("level_spacing_bps >= 0", "ck_mm_configs_level_spacing_bps_not_negative"),
        _check("staleness_threshold_ms > 0", "ck_mm_configs_staleness_threshold_ms_positive"),
        _check("quote_interval_ms > 0", "ck_mm_configs_quote_interval_ms_positive"),
        _check("price_threshold_bps >= 0", "ck_mm_configs_price_threshold_bps_not_negative"),
        _check("updated_by <> ''", "ck_mm_configs_updated_by_not_empty"),
    )


def _create_states() -> None:
    op.create_table(
        "mm_states",
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("state", sa.String(16), server_default=sa.text("'PAUSED'"), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=True),
        sa.Column("trigger_detail", sa.Text(), nullable=True),
        _text("reason", "''"),
        _text("actor", "'system'"),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("symbol", name=op.f("pk_mm_states")),
        sa.ForeignKeyConstraint(
            ["symbol"],
            ["mm_configs.symbol"],
            name=op.f("fk_mm_states_symbol_mm_configs"),
            ondelete="CASCADE",
        ),
        _check(f"state IN {STATES}", "ck_mm_states_state_known"),
        _check(f"trigger IN {KILL_TRIGGERS}", "ck_mm_states_trigger_known"),
        _check("(state = 'HALTED') = (trigger IS NOT NULL)", "ck_mm_states_halted_has_trigger"),
        _check(
            "trigger IS NOT NULL OR trigger_detail IS NULL", "ck_mm_states_detail_needs_trigger"
        ),
        _check("actor <> ''", "ck_mm_states_actor_not_empty"),
    )


def _create_kill_switch() -> None:
    op.create_table(
        "mm_kill_switch",
        sa.Column("id", sa.SmallInteger(), server_default=sa.text("1"), nullable=False),
        sa.Column("active", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("trigger", sa.String(32), nullable=True),
        _text("reason", "''"),
        _text("actor", "'system'"),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mm_kill_switch")),
        _check("id = 1", "ck_mm_kill_switch_single_row"),
        _check("trigger IN ('KAFKA_LAG', 'MANUAL')", "ck_mm_kill_switch_trigger_known"),
        _check("active = (trigger IS NOT NULL)", "ck_mm_kill_switch_active_has_trigger"),
        _check("actor <> ''", "ck_mm_kill_switch_actor_not_empty"),
    )
    op.execute("INSERT INTO mm_kill_switch (id) VALUES (1)")


def _create_positions() -> None:
    op.create_table(
        "mm_positions",
        sa.Column("symbol", sa.String(32), nullable=False),
        _numeric("quantity", "0"),
        _numeric("avg_entry_price", "0"),
        _numeric("realized_pnl", "0"),
        _numeric("fees_paid", "0"),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("symbol", name=op.f("pk_mm_positions")),
        _check("avg_entry_price >= 0", "ck_mm_positions_avg_entry_price_not_negative"),
    )


def _create_orders() -> None:
    op.create_table(
        "mm_orders",
        sa.Column("client_order_id", sa.Uuid(), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=True),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        _numeric("price"),
        _numeric("quantity"),
        _numeric("filled_quantity", "0"),
        sa.Column("status", sa.String(16), server_default=sa.text("'PENDING'"), nullable=False),
        sa.Column("level", sa.SmallInteger(), nullable=False),
        sa.Column("reject_reason", sa.Text(), nullable=True),
        _now("created_at"),
        _now("updated_at"),
        sa.PrimaryKeyConstraint("client_order_id", name=op.f("pk_mm_orders")),
        sa.UniqueConstraint("order_id", name=op.f("uq_mm_orders_order_id")),
        _check(f"side IN {SIDES}", "ck_mm_orders_side_known"),
        _check(f"status IN {STATUSES}", "ck_mm_orders_status_known"),
        _check("price > 0", "ck_mm_orders_price_positive"),
        _check("quantity > 0", "ck_mm_orders_quantity_positive"),
        _check("filled_quantity >= 0", "ck_mm_orders_filled_quantity_not_negative"),
        _check("filled_quantity <= quantity", "ck_mm_orders_filled_within_quantity"),
        _check("status <> 'FILLED' OR filled_quantity = quantity", "ck_mm_orders_filled_is_full"),
        _check("level >= 0", "ck_mm_orders_level_not_negative"),
    )
    op.create_index(
        "ix_mm_orders_open_by_symbol",
        "mm_orders",
        ["symbol"],
        postgresql_where=sa.text(f"status IN {OPEN_STATUSES}"),
    )


def _create_fills() -> None:
    op.create_table(
        "mm_fills",
        _bigserial(),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("order_id", sa.String(64), nullable=False),
        sa.Column("client_order_id", sa.String(64), nullable=False),
        sa.Column("side", sa.String(4), nullable=False),
        _numeric("price"),
        _numeric("quantity"),
        _numeric("fee", "0"),
        sa.Column("fee_asset", sa.String(16), nullable=True),
        sa.Column("liquidity", sa.String(5), nullable=True),
        sa.Column("ts_ms", sa.BigInteger(), nullable=False),
        _now("recorded_at"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mm_fills")),
        sa.UniqueConstraint("event_id", name=op.f("uq_mm_fills_event_id")),
        _check(f"side IN {SIDES}", "ck_mm_fills_side_known"),
        _check("liquidity IN ('MAKER', 'TAKER')", "ck_mm_fills_liquidity_known"),
        _check("price > 0", "ck_mm_fills_price_positive"),
        _check("quantity > 0", "ck_mm_fills_quantity_positive"),
        _check("ts_ms >= 0", "ck_mm_fills_ts_ms_not_negative"),
        _check("event_id <> ''", "ck_mm_fills_event_id_not_empty"),
    )
    op.create_index("ix_mm_fills_symbol_ts", "mm_fills", ["symbol", "ts_ms", "id"])


def _create_outbox() -> None:
    op.create_table(
        "outbox",
        _bigserial(),
        sa.Column("topic", sa.String(255), nullable=False),
        sa.Column("key", sa.String(32), nullable=True),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        _now("created_at"),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        _check(f"topic IN {TOPICS}", "ck_outbox_topic_published"),
    )
    # The relay's only query: unsent rows in id order (ARCHITECTURE D16).
    op.create_index(
        "ix_outbox_unsent", "outbox", ["id"], postgresql_where=sa.text("sent_at IS NULL")
    )


def _create_audit() -> None:
    op.create_table(
        "mm_audit",
        _bigserial(),
        _now("ts"),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("symbol", sa.String(32), nullable=True),
        sa.Column(
            "detail", postgresql.JSONB(), server_default=sa.text("'{}'::jsonb"), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mm_audit")),
        _check("actor <> ''", "ck_mm_audit_actor_not_empty"),
        _check("action <> ''", "ck_mm_audit_action_not_empty"),
    )
    op.create_index("ix_mm_audit_symbol_id", "mm_audit", ["symbol", "id"])


def upgrade() -> None:
    _create_configs()
    _create_states()
    _create_kill_switch()
    _create_positions()
    _create_orders()
    _create_fills()
    _create_outbox()
    _create_audit()


def downgrade() -> None:
    for table in (
        "mm_audit",
        "outbox",
        "mm_fills",
        "mm_orders",
        "mm_positions",
        "mm_kill_switch",
        "mm_states",
        "mm_configs",
    ):
        op.drop_table(table)
