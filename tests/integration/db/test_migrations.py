"""The alembic migrations: up, down and up again on a scratch database; head equals the models."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, create_engine, inspect, text
from sqlalchemy.exc import OperationalError

from mmsvc.adapters.db.models import Base
from mmsvc.devstack import services
from tests.fixtures.db import ALEMBIC_INI, alembic_config

pytestmark = pytest.mark.integration

# Per process: engineers and CI runs sharing one PostgreSQL must not drop each other's.
SCRATCH_DATABASE = f"mmsvc_test_migrations_{os.getpid()}"
TABLES = {
    "mm_configs",
    "mm_states",
    "mm_kill_switch",
    "mm_positions",
    "mm_orders",
    "mm_fills",
    "outbox",
    "mm_audit",
    "mm_dead_letters",
    "mm_leases",
    "mm_commands",
}


@pytest.fixture
def scratch_url(pg_admin_url: str) -> Iterator[str]:
    """An empty database of this module's own, dropped afterwards."""
    url = services.ensure_database(pg_admin_url, SCRATCH_DATABASE, recreate=True)
    yield url
    with psycopg.connect(pg_admin_url, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DATABASE}" WITH (FORCE)')


@pytest.fixture
def scratch_engine(scratch_url: str) -> Iterator[Engine]:
    engine = create_engine(scratch_url)
    yield engine
    engine.dispose()


def tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def test_upgrade_downgrade_upgrade_on_a_scratch_database(scratch_url, scratch_engine):
    config = alembic_config(scratch_url)
    command.upgrade(config, "head")
    assert tables(scratch_engine) == TABLES
    command.downgrade(config, "base")
    assert tables(scratch_engine) == set()
    command.upgrade(config, "head")
    assert tables(scratch_engine) == TABLES
    with scratch_engine.connect() as connection:
        flag = connection.execute(text("SELECT id, active FROM mm_kill_switch")).all()
    assert flag == [(1, False)]


def test_the_alembic_command_line_reads_postgres_url(scratch_url, scratch_engine):
    env = {**os.environ, "POSTGRES_URL": scratch_url.replace("+psycopg", "")}
    alembic = Path(sys.executable).parent / "alembic"
    for args in (["upgrade", "head"], ["downgrade", "base"], ["upgrade", "head"]):
        subprocess.run(
            [str(alembic), "-c", str(ALEMBIC_INI), *args],
            env=env,
            check=True,
            capture_output=True,
            cwd="/",
        )
    assert tables(scratch_engine) == TABLES


def test_head_matches_the_models(db_engine):
    with db_engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        assert compare_metadata(context, Base.metadata) == []


def test_a_migration_gives_up_on_a_lock_instead_of_queueing_behind_it(scratch_url, scratch_engine):
    config = alembic_config(scratch_url)
    command.upgrade(config, "head")
    held, release = threading.Event(), threading.Event()

    def hold_a_table() -> None:
        with scratch_engine.connect() as connection:
            connection.execute(text("LOCK TABLE mm_fills IN ACCESS SHARE MODE"))
            held.set()
            release.wait(30)

    holder = threading.Thread(target=hold_a_table)
    holder.start()
    try:
        assert held.wait(10)
        with pytest.raises(OperationalError, match="lock timeout"):
            command.downgrade(config, "base")
    finally:
        release.set()
        holder.join()
    # One transaction per revision: 0007 (mm_commands) and 0005 (mm_leases) were undone;
    # 0003, which must lock mm_fills to drop its CHECKs, gave up and left its tables.
    assert tables(scratch_engine) == TABLES - {"mm_leases", "mm_commands"}


def test_the_bounds_migration_refuses_rows_outside_them_and_changes_nothing(
    scratch_url, scratch_engine
):
    config = alembic_config(scratch_url)
    command.upgrade(config, "0001")
    with scratch_engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO mm_configs (symbol, base_spread_bps, quote_interval_ms) "
                "VALUES ('BTCUSDT', 0, 0.5), ('ETHUSDT', 10, 100)"
            )
        )

    with pytest.raises(RuntimeError, match=r"BTCUSDT: base_spread_bps, quote_interval_ms$"):
        command.upgrade(config, "head")

    with scratch_engine.connect() as connection:
        version = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
        kept = connection.execute(
            text("SELECT quote_interval_ms FROM mm_configs WHERE symbol = 'BTCUSDT'")
        ).scalar()
    assert (version, kept) == ("0001", Decimal("0.5"))
