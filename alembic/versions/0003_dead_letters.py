"""Dead letters (D24, D31) and no NaN or Infinity in money columns.

Revision ID: 0003_dead_letters
Revises: 0001
Create Date: 2026-11-30

mm_dead_letters keeps a must-deliver message whose content cannot be applied
(its bytes, position and reason) and, while uncleared, holds its symbol's
quotes. NUMERIC columns of fills, orders and positions refuse NaN and
+-Infinity, so that no code path can store a non-finite amount (D24).
The lead re-chains this after 0002 (down_revision).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_dead_letters"
down_revision: str | None = "0002_config_bounds"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FINITE = {
    "mm_fills": ("price", "quantity", "fee"),
    "mm_orders": ("price", "quantity", "filled_quantity"),
    "mm_positions": ("quantity", "avg_entry_price", "realized_pnl", "fees_paid"),
}


def _check(condition: str, name: str) -> sa.CheckConstraint:
    return sa.CheckConstraint(condition, name=op.f(name))


def upgrade() -> None:
    op.create_table(
        "mm_dead_letters",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("topic", sa.String(length=255), nullable=False),
        sa.Column("kafka_partition", sa.Integer(), nullable=False),
        sa.Column("kafka_offset", sa.BigInteger(), nullable=False),
        sa.Column("key", sa.Text(), nullable=True),
        sa.Column("value", sa.LargeBinary(), nullable=False),
        sa.Column("reason", sa.String(length=64), nullable=False),
        sa.Column("detail", sa.Text(), server_default=sa.text("''"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("cleared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cleared_by", sa.Text(), nullable=True),
        sa.Column("cleared_how", sa.String(length=16), nullable=True),
        sa.Column("clear_reason", sa.Text(), nullable=True),
        sa.Column("replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mm_dead_letters")),
        _check("cleared_how IN ('discard', 'replay')", "ck_mm_dead_letters_cleared_how_known"),
        _check(
            "(cleared_at IS NULL) = (cleared_how IS NULL)", "ck_mm_dead_letters_cleared_has_how"
        ),
        _check(
            "(cleared_at IS NULL) = (cleared_by IS NULL)", "ck_mm_dead_letters_cleared_has_actor"
        ),
        _check("cleared_by <> ''", "ck_mm_dead_letters_cleared_by_not_empty"),
        _check("reason <> ''", "ck_mm_dead_letters_reason_not_empty"),
        _check(
            "replayed_at IS NULL OR cleared_how = 'replay'",
            "ck_mm_dead_letters_replayed_only_on_replay",
        ),
    )
    op.create_index(
        "ix_mm_dead_letters_uncleared_symbol",
        "mm_dead_letters",
        ["symbol"],
        postgresql_where=sa.text("cleared_at IS NULL"),
    )
    op.create_index(
        "uq_mm_dead_letters_uncleared_message",
        "mm_dead_letters",
        ["topic", "kafka_partition", "kafka_offset"],
        unique=True,
        postgresql_where=sa.text("cleared_at IS NULL"),
    )
    for table, columns in FINITE.items():
        for column in columns:
            op.create_check_constraint(
                op.f(f"ck_{table}_{column}_finite"),
                table,
                f"{column} <> 'NaN' AND {column} <> 'Infinity' AND {column} <> '-Infinity'",
            )


def downgrade() -> None:
    for table, columns in FINITE.items():
        for column in columns:
            op.drop_constraint(op.f(f"ck_{table}_{column}_finite"), table, type_="check")
    op.drop_index("uq_mm_dead_letters_uncleared_message", table_name="mm_dead_letters")
    op.drop_index("ix_mm_dead_letters_uncleared_symbol", table_name="mm_dead_letters")
    op.drop_table("mm_dead_letters")
