"""Order lifecycle: rows carry "awaiting final event" (ARCHITECTURE D22, D31).

Revision ID: 0004_order_lifecycle
Revises: 0001
Create Date: 2026-11-30

A DELETE answered 200 makes a row CANCELED, but only the order's final engine
event releases its exposure; the flag survives restarts, and a config DELETE
is refused while any row of the symbol carries it. Rows already final when
this runs are taken as settled.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_order_lifecycle"
down_revision: str | None = "0003_dead_letters"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "mm_orders",
        sa.Column(
            "awaiting_final_event", sa.Boolean(), server_default=sa.text("true"), nullable=False
        ),
    )
    op.execute(
        "UPDATE mm_orders SET awaiting_final_event = false"
        " WHERE status IN ('FILLED', 'CANCELED', 'REJECTED', 'EXPIRED')"
    )


def downgrade() -> None:
    op.drop_column("mm_orders", "awaiting_final_event")
