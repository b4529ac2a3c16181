"""Engine construction: any PostgreSQL URL ends up on psycopg 3."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from mmsvc.adapters.db.engine import make_engine, make_session_factory, sqlalchemy_url

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
