"""The ownership lease with its fencing epoch: mm_leases (ARCHITECTURE D26, D32).

Revision ID: 0005_leases
Revises: 0001
Create Date: 2026-11-30

Written out in full, as 0001 is. alembic/env.py sets lock_timeout and
statement_timeout on the migration's connection, so creating this table gives
up instead of queueing behind a long transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_leases"
# The lead re-chains this onto the latest revision when merging.
down_revision: str | None = "0004_order_lifecycle"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mm_leases",
        sa.Column("symbol", sa.String(32), nullable=False),
        sa.Column("owner", sa.Text(), nullable=False),
        sa.Column("epoch", sa.BigInteger(), nullable=False),
        sa.Column(
            "taken_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("symbol", name=op.f("pk_mm_leases")),
        sa.CheckConstraint("owner <> ''", name=op.f("ck_mm_leases_owner_not_empty")),
        sa.CheckConstraint("epoch >= 1", name=op.f("ck_mm_leases_epoch_positive")),
    )


def downgrade() -> None:
    op.drop_table("mm_leases")
