"""Engine construction: any PostgreSQL URL ends up on psycopg 3."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from mmsvc.adapters.db.engine import (
    database_down,
    make_engine,
    make_session_factory,
    sqlalchemy_url,
)

pytestmark = pytest.mark.integration


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@h:5432/d",
        "postgres://u:p@h:5432/d",
        "postgresql+psycopg://u:p@h:5432/d",
    ],
)
def test_every_postgres_scheme_is_driven_by_psycopg3(url):
    assert sqlalchemy_url(url) == "postgresql+psycopg://u:p@h:5432/d"


def test_a_url_of_another_database_is_refused():
    with pytest.raises(ValueError, match="mysql"):
        sqlalchemy_url("mysql://u:p@h/d")


def test_a_session_from_the_factory_reaches_the_database(database_url):
    engine = make_engine(database_url.replace("+psycopg", ""))
    try:
        with make_session_factory(engine)() as session:
            assert session.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()


def test_a_connection_lost_before_the_first_statement_is_an_outage_not_a_crash(database_url):
    """The statement timeout's SET LOCAL (the begin event) is the first thing a transaction
    sends: a server gone at that moment must raise SQLAlchemy's OperationalError, which
    every caller treats as an outage (D25), not the driver's own error, which none catches
    (a worker crashed on it when PostgreSQL shut down under it). The dead connection is
    discarded: the next transaction gets a new one."""
    engine = make_engine(database_url.replace("+psycopg", ""), pool_size=1, pre_ping=False)
    sessions = make_session_factory(engine)
    try:
        with sessions() as session:
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
            session.commit()
        killer = make_engine(database_url.replace("+psycopg", ""), pool_size=0)
        with killer.connect() as conn:
            conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        killer.dispose()
        with pytest.raises(OperationalError) as caught, sessions() as session:
            session.execute(text("SELECT 1"))
        assert database_down(caught.value)
        with sessions() as session:
            assert session.execute(text("SELECT 1")).scalar_one() == 1
    finally:
        engine.dispose()
