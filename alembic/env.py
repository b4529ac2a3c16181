"""Alembic environment for mmsvc: PostgreSQL through psycopg 3, timeouts on every migration."""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection, create_engine, pool, text

from mmsvc.adapters.db.engine import sqlalchemy_url
from mmsvc.adapters.db.models import Base

# As pypi/warehouse does: a migration that waits for a lock held by the running
# service gives up after 4 s instead of queueing every query behind it, and no
# statement may run long enough to stall the market maker.
LOCK_TIMEOUT = "4s"
STATEMENT_TIMEOUT = "5s"


if context.config.config_file_name and context.config.attributes.get("configure_logger", True):
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)


def database_url() -> str:
    """`-x url=...`, else a URL set on the Config (tests), else POSTGRES_URL."""
    url = (
        context.get_x_argument(as_dictionary=True).get("url")
        or context.config.get_main_option("sqlalchemy.url")
        or os.environ.get("POSTGRES_URL")
    )
    if not url:
        raise SystemExit("alembic: set POSTGRES_URL or pass -x url=postgresql://...")
    return sqlalchemy_url(url)


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        compare_type=True,
        compare_server_default=True,
        transaction_per_migration=True,
    )


def run_migrations_offline() -> None:
    """Print the SQL instead of running it (`alembic upgrade head --sql`)."""
    context.configure(url=database_url(), target_metadata=Base.metadata, literal_binds=True)
    with context.begin_transaction():
        context.execute(f"SET lock_timeout = '{LOCK_TIMEOUT}'")
        context.execute(f"SET statement_timeout = '{STATEMENT_TIMEOUT}'")
        context.run_migrations()


def run_migrations_online() -> None:
    """Migrate over one connection whose session carries the timeouts."""
    engine = create_engine(database_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        connection.execute(text(f"SET lock_timeout = '{LOCK_TIMEOUT}'"))
        connection.execute(text(f"SET statement_timeout = '{STATEMENT_TIMEOUT}'"))
        # Session-level settings outlive this commit; the migrations then run
        # in transactions of their own.
        connection.commit()
        _configure(connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
