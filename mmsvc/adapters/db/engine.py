"""Engines and sessions for PostgreSQL through psycopg 3, direct or through PgBouncer (D27, D32).

No caller waits on PostgreSQL forever (D25). A connect gives up after
CONNECT_TIMEOUT_S. A statement gives up after the statement timeout
(POSTGRES_STATEMENT_TIMEOUT, default 5s): a lock another session holds, or a
server that accepts connections and does not answer, then costs a request
thread or a worker's write that long and ends in an OperationalError
(QueryCanceled), which the admin answers 503 and a worker treats as an outage.

How the timeout is set: ``SET LOCAL statement_timeout`` as the first statement
of every transaction (a ``begin`` event), not a connect-time
``options=-c statement_timeout=...``. Through PgBouncer in transaction mode
(the workers' path, D27, D32) startup options are not forwarded to the server
connection a transaction borrows (PgBouncer refuses or drops them), and a
plain ``SET`` would leak to the next client of that server connection; ``SET
LOCAL`` lives exactly as long as the transaction, on whichever server
connection runs it. PgBouncer's own ``query_timeout`` was the other choice:
it only exists where PgBouncer does (not on the direct connections of the
admin, the supervisor and the outbox relay), and it closes the client's
connection rather than failing one statement. The price is one more round
trip per transaction. A server whose backends are frozen (SIGSTOP) cannot
enforce a server-side timeout at all; only a new connection then fails fast
(the connect timeout), which is what the pre-ping of every checkout does.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, cast

from sqlalchemy import Connection, Engine, NullPool, create_engine, event
from sqlalchemy.engine.interfaces import DBAPIModule
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
    StatementError,
)
from sqlalchemy.orm import Session, sessionmaker

DRIVER = "postgresql+psycopg"
_PLAIN_SCHEMES = {"postgres", "postgresql", DRIVER}
# A worker runs one transaction at a time (D27): one connection, never more.
WORKER_POOL_SIZE = 1
# D25: a dead or unreachable server fails a connect within this, never hangs a loop.
CONNECT_TIMEOUT_S = 2
# D25: the default of POSTGRES_STATEMENT_TIMEOUT (mmsvc.config); see the module docstring.
STATEMENT_TIMEOUT_S = 5.0
# A worker's checkouts are pinged first (a pooled connection may have died with
# PgBouncer or PostgreSQL), but for one whose single statement is its own ping.
_PRE_PING: ContextVar[bool] = ContextVar("mmsvc_pre_ping", default=True)


def database_down(exc: BaseException) -> bool:
    """True when ``exc`` says PostgreSQL is unreachable (refused, reset, shutting down,
    starting up), not that a statement or its data was wrong (D25: hold and retry)."""
    if isinstance(exc, OperationalError | InterfaceError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated


def sqlalchemy_url(url: str) -> str:
    """The same URL with the psycopg 3 driver named, whichever postgres scheme it came with."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in _PLAIN_SCHEMES:
        raise ValueError(f"not a PostgreSQL URL (scheme {scheme!r})")
    return f"{DRIVER}://{rest}"


def make_engine(
    url: str,
    *,
    application_name: str = "mmsvc",
    pool_size: int = 2,
    max_overflow: int = 2,
    statement_timeout_s: float = STATEMENT_TIMEOUT_S,
    idle_in_transaction_s: float | None = None,
    pre_ping: bool = True,
) -> Engine:
    """An engine on psycopg 3 that works through a transaction-mode pooler (D27, D32).

    No server-side prepared statements (``prepare_threshold=None``): through
    PgBouncer in transaction mode, consecutive transactions of one client may
    run on different server connections, where a prepared statement does not
    exist. ``pool_size=0`` borrows a new connection per checkout (NullPool),
    for a process that must hold no connection between transactions.
    """
    connect_args = {
        "application_name": application_name,
        "prepare_threshold": None,
        "connect_timeout": CONNECT_TIMEOUT_S,
    }
    pooling: dict[str, Any] = (
        {"poolclass": NullPool}
        if pool_size == 0
        else {"pool_size": pool_size, "max_overflow": max_overflow}
    )
    engine = create_engine(
        sqlalchemy_url(url),
        # A process lives for hours; a dead server connection must fail the
        # ping, not the first statement after a PostgreSQL restart.
        pool_pre_ping=pre_ping,
        connect_args=connect_args,
        **pooling,
    )
    limit_statements(engine, statement_timeout_s, idle_in_transaction_s)
    return engine


def limit_statements(engine: Engine, timeout_s: float, idle_s: float | None = None) -> None:
    """Every transaction of ``engine`` starts with ``SET LOCAL statement_timeout`` (D25).

    ``idle_s``: also ``idle_in_transaction_session_timeout``, for the lease holders
    (``make_worker_engine``): PostgreSQL ends a transaction whose client stopped
    sending for that long, and with it the row locks it held.
    """
    statement = f"SET LOCAL statement_timeout = {_ms(timeout_s)}"
    if idle_s is not None:  # one round trip for both (set_config(..., true) is SET LOCAL)
        statement = (
            f"SELECT set_config('statement_timeout', '{_ms(timeout_s)}', true),"
            f" set_config('idle_in_transaction_session_timeout', '{_ms(idle_s)}', true)"
        )

    @event.listens_for(engine, "begin")
    def _limit(connection: Connection) -> None:
        # On the driver's cursor: psycopg opens the transaction with this statement,
        # and SQLAlchemy's own statements follow in it (no event re-entered).
        dbapi_connection = connection.connection.dbapi_connection
        if dbapi_connection is None or dbapi_connection.autocommit:
            # One autocommit statement (the lease renewal, issue 13) has no transaction
            # for SET LOCAL to live in; it is its own ping and is retried once instead.
            return
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(statement)
        except connection.dialect.loaded_dbapi.Error as exc:
            raise _wrapped(connection, statement, exc) from exc
        finally:
            cursor.close()


def _ms(seconds: float) -> int:
    return max(1, round(seconds * 1000))


def _wrapped(connection: Connection, statement: str, exc: DBAPIModule.Error) -> StatementError:
    """The driver's error as SQLAlchemy's, as if SQLAlchemy had sent the statement.

    An error raised in a ``begin`` event reaches the caller unwrapped: a server
    gone at the first statement of a transaction would escape every ``except
    OperationalError`` (a worker crashed on it when PostgreSQL shut down under
    it). A lost connection is invalidated, so that the pool discards it.
    """
    dbapi = connection.dialect.loaded_dbapi
    lost = connection.dialect.is_disconnect(exc, connection.connection.dbapi_connection, None)
    if lost:
        connection.invalidate(exc)
    cause = cast(Exception, exc)
    return DBAPIError.instance(statement, None, cause, dbapi.Error, connection_invalidated=lost)


def make_worker_engine(
    url: str,
    *,
    application_name: str,
    statement_timeout_s: float = STATEMENT_TIMEOUT_S,
    idle_in_transaction_s: float | None = None,
) -> Engine:
    """A worker's engine: at most one connection, borrowed by one transaction at a time (D27).

    Point `url` at the pooler (POSTGRES_POOL_URL in the dev stack): the one
    client connection a worker keeps costs PgBouncer a socket, not PostgreSQL
    a backend; a server connection is only held for a transaction's duration.

    ``idle_in_transaction_s``: the worker passes its lease's length (D26). Every
    write transaction of a worker starts by locking its lease row (``leases.fence``);
    a worker frozen inside one (SIGSTOP, a host cut off) kept that lock, so its
    successor's take waited behind it past the lease's expiry, for as long as the
    frozen process lived (found by fresh12: the take failed on its statement
    timeout). A worker that does not run for a lease's length has lost the lease
    anyway, so ending its transaction then costs nothing it still had.
    """
    engine = make_engine(
        url,
        application_name=application_name,
        pool_size=WORKER_POOL_SIZE,
        max_overflow=0,
        statement_timeout_s=statement_timeout_s,
        idle_in_transaction_s=idle_in_transaction_s,
        pre_ping=False,  # done by _ping_on_checkout, which `unpinged` can skip
    )
    event.listen(engine, "checkout", _ping_on_checkout(engine))
    return engine


def _ping_on_checkout(engine: Engine) -> Any:
    """The pool's pre-ping, skippable: a dead connection is replaced before it is used."""
    dialect = engine.dialect

    def ping(dbapi_connection: Any, *_: Any) -> None:  # (dbapi_connection, record, proxy)
        if not _PRE_PING.get():
            return
        try:
            dialect.do_ping(dbapi_connection)
        except dialect.loaded_dbapi.Error as exc:
            # The pool discards this connection and checks out a new one.
            raise DisconnectionError(f"pre-ping failed: {exc}") from exc

    return ping


@contextmanager
def unpinged() -> Iterator[None]:
    """Check out of a worker's engine without the pre-ping's round trip.

    For a caller whose one statement is its own ping: it must retry once when
    that statement finds the connection dead (``connection_invalidated``), as
    the pre-ping would have (issue 13: the lease renewal, about every second).
    """
    token = _PRE_PING.set(False)
    try:
        yield
    finally:
        _PRE_PING.reset(token)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    """Sessions whose values stay readable after commit (the caller owns the transaction)."""
    return sessionmaker(bind=engine, expire_on_commit=False)
