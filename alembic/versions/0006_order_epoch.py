"""The owner's fencing epoch on each order row: mm_orders.epoch (ARCHITECTURE D26, D32).

Revision ID: 0006_order_epoch
Revises: 0005_leases
Create Date: 2026-11-30

A worker records the epoch of its lease on every PENDING row it writes, so a
check that joins the venue's orders to rows by client_order_id knows which
owner sent each one (a new owner cancels the old epoch's open orders). Rows
written before this revision, and by no lease, keep NULL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_order_epoch"
down_revision: str | None = "0005_leases"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("mm_orders", sa.Column("epoch", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("mm_orders", "epoch")
