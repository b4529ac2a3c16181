"""mm_configs' CHECKs at head are the config model's bounds, and refuse what the model refuses."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import insert, text
from sqlalchemy.exc import DataError
from sqlalchemy.orm import Session

from mmsvc.adapters.db.config_table import bounds_sql
from mmsvc.adapters.db.models import MMConfig
from mmsvc.domain.symbol_config import CONFIG_FIELDS
from tests.integration.db.conftest import constraint_refusing

pytestmark = pytest.mark.integration

DEFINITIONS = """
SELECT conname, pg_get_constraintdef(c.oid)
FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid
WHERE t.relname = :table AND c.contype = 'c' AND conname LIKE '%\\_bounds'
"""


def definitions(session: Session, table: str) -> dict[str, str]:
    rows = session.execute(text(DEFINITIONS), {"table": table})
    return {name.removeprefix(f"ck_{table}_"): definition for name, definition in rows}


def test_the_migrated_checks_are_the_models_bounds(db_session: Session) -> None:
    # PostgreSQL normalises a CHECK's text, so the model's SQL is normalised the same
    # way: added to an empty copy of the table and read back.
    db_session.execute(text("CREATE TEMP TABLE model_configs (LIKE mm_configs) ON COMMIT DROP"))
    for name in CONFIG_FIELDS:
        condition = bounds_sql(name)
        if condition is not None:
            db_session.execute(
                text(
                    f"ALTER TABLE model_configs ADD CONSTRAINT ck_model_configs_{name}_bounds "
                    f"CHECK ({condition})"
                )
            )

    expected = definitions(db_session, "model_configs")
    assert definitions(db_session, "mm_configs") == expected
    numeric = {"base_spread_bps", "num_levels", "quote_interval_ms", "price_threshold_bps"}
    assert {name.removesuffix("_bounds") for name in expected} >= numeric


# The rows: each one the database held and the core refused (or worse).
@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("base_spread_bps", Decimal("0")),
        ("order_size_usdt", Decimal("1E+40")),
        ("max_position_usdt", Decimal("1E+300")),
        ("num_levels", 21),
        ("quote_interval_ms", 5),
        ("staleness_threshold_ms", 0),
        ("order_size_usdt", Decimal("1.11111111111111111111111111111111111111")),
        ("order_size_usdt", Decimal("NaN")),
        ("max_loss_usdt", Decimal("Infinity")),
        ("inventory_skew_factor", Decimal("1.01")),
        ("level_spacing_bps", Decimal("0")),
        ("max_loss_usdt", Decimal("0")),
    ],
)
def test_the_database_refuses_a_config_outside_the_bounds(
    db_session: Session, field: str, value: Any
) -> None:
    statement = insert(MMConfig).values(symbol="BTCUSDT", **{field: value})
    assert constraint_refusing(db_session, statement) == f"ck_mm_configs_{field}_bounds"


def test_the_database_holds_whole_milliseconds_only(db_session: Session) -> None:
    with pytest.raises(DataError), db_session.begin_nested():
        db_session.execute(
            text(
                "INSERT INTO mm_configs (symbol, staleness_threshold_ms) VALUES ('BTCUSDT', '0.5')"
            )
        )


def test_the_database_accepts_the_bounds_themselves(db_session: Session) -> None:
    edges = {
        "base_spread_bps": Decimal("10000"),
        "order_size_usdt": Decimal("1000000000000"),
        "inventory_skew_factor": Decimal("1"),
        "max_loss_usdt": Decimal("0.0000000000000000000000000000000000001"),
        "num_levels": 20,
        "quote_interval_ms": 10,
        "staleness_threshold_ms": 1,
        "price_threshold_bps": Decimal("0"),
    }
    db_session.execute(insert(MMConfig).values(symbol="BTCUSDT", **edges))
