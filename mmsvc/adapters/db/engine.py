"""Engines and sessions for PostgreSQL through psycopg 3."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session, sessionmaker

DRIVER = "postgresql+psycopg"
_PLAIN_SCHEMES = {"postgres", "postgresql", DRIVER}


def sqlalchemy_url(url: str) -> str:
    """The same URL with the psycopg 3 driver named, whichever postgres scheme it came with."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in _PLAIN_SCHEMES:
        raise ValueError(f"not a PostgreSQL URL (scheme {scheme!r})")
    return f"{DRIVER}://{rest}"


def make_engine(url: str, *, application_name: str = "mmsvc", pool_size: int = 2) -> Engine:
    """An engine on psycopg 3 that checks a pooled connection before handing it out."""
    return create_engine(
        sqlalchemy_url(url),
        pool_size=pool_size,
        max_overflow=2,
        # A worker holds its session for hours; a dead server connection must
        # fail the ping, not the first statement after a PostgreSQL restart.
        pool_pre_ping=True,
        connect_args={"application_name": application_name},
    )


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose values stay readable after commit (the caller owns the transaction)."""
    return sessionmaker(bind=engine, expire_on_commit=False)
