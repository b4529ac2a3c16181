"""The alembic migrations: up, down and up again on a scratch database; head equals the models."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
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

SCRATCH_DATABASE = "mmsvc_test_migrations"
# 0001 made these; later revisions add their own.
INITIAL_TABLES = {
    "mm_configs",
    "mm_states",
    "mm_kill_switch",
    "mm_positions",
    "mm_orders",
    "mm_fills",
    "outbox",
    "mm_audit",
}
TABLES = INITIAL_TABLES | {"mm_leases"}


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


def test_head_matches_the_models(database_url, db_engine):
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
            connection.execute(text("LOCK TABLE mm_audit IN ACCESS SHARE MODE"))
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
    # One transaction per revision: the later ones were undone, the one that
    # gave up (0001, dropping mm_audit) left every table of its own in place.
    assert tables(scratch_engine) == INITIAL_TABLES
