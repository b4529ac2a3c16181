"""Admin commands between hosts and their answers: mm_commands (ARCHITECTURE D28, D32).

Revision ID: 0007_commands
Revises: 0006_order_epoch
Create Date: 2026-12-01

The admin process of any host steers a symbol owned by another host's
supervisor by inserting a row here (target_host = the lease owner's host) and
NOTIFYing ``mm_commands``; that supervisor LISTENs on a direct connection,
claims the row, runs it and writes the answer the admin waits for. No new
port between hosts: PostgreSQL's credentials authenticate the channel.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007_commands"
down_revision: str | None = "0006_order_epoch"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mm_commands",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("symbol", sa.String(32), nullable=True),
        sa.Column("command", sa.String(32), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "args",
            postgresql.JSONB(),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("target_host", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.SmallInteger(), nullable=True),
        sa.Column("answer", postgresql.JSONB(), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mm_commands")),
        sa.CheckConstraint("command <> ''", name=op.f("ck_mm_commands_command_not_empty")),
        sa.CheckConstraint("target_host <> ''", name=op.f("ck_mm_commands_target_host_not_empty")),
        sa.CheckConstraint(
            "(answered_at IS NULL) = (status IS NULL)",
            name=op.f("ck_mm_commands_answered_has_status"),
        ),
    )
    op.create_index(
        "ix_mm_commands_unanswered_target",
        "mm_commands",
        ["target_host", "id"],
        postgresql_where=sa.text("answered_at IS NULL"),
    )
    op.create_index("ix_mm_commands_created_at", "mm_commands", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_mm_commands_created_at", table_name="mm_commands")
    op.drop_index("ix_mm_commands_unanswered_target", table_name="mm_commands")
    op.drop_table("mm_commands")
