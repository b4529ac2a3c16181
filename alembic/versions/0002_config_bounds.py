"""Config bounds: one CHECK per numeric field of mm_configs, as the config model says (issue 11).

Revision ID: 0002_config_bounds
Revises: 0001
Create Date: 2026-11-30

Written out literally, as 0001 is, so this revision keeps meaning what it
meant; tests/integration/db/test_config_bounds.py compares the constraints of a
database at head with those the model generates, so the two cannot drift.

The millisecond fields become INTEGER: the core counts whole milliseconds, and
a NUMERIC 0.5 there was a row the database held and the core refused.

Rows already outside the bounds are refused, not clamped: clamping would
change a live symbol's spread, size or limits without anyone deciding it. The
upgrade stops before changing anything and names every symbol and field at
fault; an operator corrects them (an audited PUT through the running admin API,
which still accepts the old ranges) and runs the upgrade again.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002_config_bounds"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MS_COLUMNS = {"staleness_threshold_ms": "1000", "quote_interval_ms": "100"}


def _digits(column: str) -> str:
    # At most 340 decimal places and 38 significant digits.
    significant = f"length(ltrim(replace(abs({column})::text, '.', ''), '0'))"
    return f"scale({column}) <= 340 AND {significant} <= 38"


def _bps(column: str, low: str) -> str:
    return f"{column} {low} AND {column} <= 10000 AND {_digits(column)}"


def _usdt(column: str) -> str:
    return f"{column} > 0 AND {column} <= 1000000000000 AND {_digits(column)}"


BOUNDS = {
    "base_spread_bps": _bps("base_spread_bps", "> 0"),
    "order_size_usdt": _usdt("order_size_usdt"),
    "inventory_skew_factor": (
        f"inventory_skew_factor >= 0 AND inventory_skew_factor <= 1"
        f" AND {_digits('inventory_skew_factor')}"
    ),
    "max_position_usdt": _usdt("max_position_usdt"),
    "max_loss_usdt": _usdt("max_loss_usdt"),
    "num_levels": "num_levels >= 1 AND num_levels <= 20",
    "level_spacing_bps": _bps("level_spacing_bps", "> 0"),
    "staleness_threshold_ms": "staleness_threshold_ms >= 1 AND staleness_threshold_ms <= 3600000",
    "quote_interval_ms": "quote_interval_ms >= 10 AND quote_interval_ms <= 3600000",
    "price_threshold_bps": _bps("price_threshold_bps", ">= 0"),
}

# 0001's constraints, replaced by the bounds above (and restored by the downgrade).
OLD_CHECKS = {
    "ck_mm_configs_base_spread_bps_not_negative": "base_spread_bps >= 0",
    "ck_mm_configs_order_size_usdt_positive": "order_size_usdt > 0",
    "ck_mm_configs_inventory_skew_factor_not_negative": "inventory_skew_factor >= 0",
    "ck_mm_configs_max_position_usdt_positive": "max_position_usdt > 0",
    "ck_mm_configs_max_loss_usdt_not_negative": "max_loss_usdt >= 0",
    "ck_mm_configs_num_levels_at_least_one": "num_levels >= 1",
    "ck_mm_configs_level_spacing_bps_not_negative": "level_spacing_bps >= 0",
    "ck_mm_configs_staleness_threshold_ms_positive": "staleness_threshold_ms > 0",
    "ck_mm_configs_quote_interval_ms_positive": "quote_interval_ms > 0",
    "ck_mm_configs_price_threshold_bps_not_negative": "price_threshold_bps >= 0",
}


def _out_of_bounds() -> list[str]:
    """'SYMBOL: field, field' for every row a new CHECK (or the INTEGER cast) would refuse."""
    connection = op.get_bind()
    faults: dict[str, list[str]] = {}
    for column, condition in BOUNDS.items():
        # IS NOT TRUE: a NaN or NULL result is a fault too.
        where = f"({condition}) IS NOT TRUE"
        if column in MS_COLUMNS:
            where += f" OR {column} <> trunc({column})"
        # The condition is this file's own literal SQL, never input.
        query = sa.text(f"SELECT symbol FROM mm_configs WHERE {where}")  # noqa: S608
        rows = connection.execute(query)
        for (symbol,) in rows:
            faults.setdefault(symbol, []).append(column)
    return [f"{symbol}: {', '.join(columns)}" for symbol, columns in sorted(faults.items())]


def upgrade() -> None:
    faults = _out_of_bounds()
    if faults:
        raise RuntimeError(
            "mm_configs rows outside the config bounds; correct them (audited PUT "
            "/v1/mm-configs/{symbol}) and run the upgrade again. Nothing was changed. "
            + "; ".join(faults)
        )
    for name in OLD_CHECKS:
        op.drop_constraint(op.f(name), "mm_configs", type_="check")
    for column, default in MS_COLUMNS.items():
        op.alter_column(
            "mm_configs",
            column,
            type_=sa.Integer(),
            postgresql_using=f"{column}::integer",
            server_default=sa.text(default),
        )
    for column, condition in BOUNDS.items():
        op.create_check_constraint(op.f(f"ck_mm_configs_{column}_bounds"), "mm_configs", condition)


def downgrade() -> None:
    for column in BOUNDS:
        op.drop_constraint(op.f(f"ck_mm_configs_{column}_bounds"), "mm_configs", type_="check")
    for column, default in MS_COLUMNS.items():
        op.alter_column(
            "mm_configs",
            column,
            type_=sa.Numeric(),
            server_default=sa.text(f"{default}.0"),
        )
    for name, condition in OLD_CHECKS.items():
        op.create_check_constraint(op.f(name), "mm_configs", condition)
