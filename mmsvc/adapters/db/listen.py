"""A LISTEN connection to PostgreSQL, on a thread of its own (ARCHITECTURE D25, D28, D32).

LISTEN is session state, so it needs a direct connection (POSTGRES_URL), never
one through PgBouncer in transaction mode; it is one connection per
supervisor, counted in the budget. It runs on its own thread so that a
PostgreSQL that is down or unreachable (a connect waiting for its timeout)
never stalls the caller's loop, which only drains what arrived. A
notification is a wake-up, not a record: one lost while the connection was
down is made up by the caller polling its table after each reconnect (the
:data:`RECONNECTED` pair) and every few seconds.
"""

from __future__ import annotations

import logging
import queue
import threading
import time

import psycopg
from psycopg import sql

from mmsvc.adapters.db.engine import CONNECT_TIMEOUT_S

log = logging.getLogger(__name__)

RETRY_S = 2.0
WAIT_S = 1.0
# A connection cut without a FIN (a partition) sends nothing: a round trip finds it.
CHECK_EVERY_S = 5.0
# Put in the queue after every (re)connect: notifications may have been missed.
RECONNECTED = ("", "reconnected")

Note = tuple[str, str]


def libpq_url(url: str) -> str:
    """The URL as libpq reads it (no SQLAlchemy driver suffix)."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme.startswith("postgres") else url


class Listener:
    """LISTENs on `channels` from a daemon thread; `drain` returns (channel, payload) pairs."""

    def __init__(
        self,
        url: str,
        channels: tuple[str, ...],
        *,
        application_name: str,
        retry_s: float = RETRY_S,
    ) -> None:
        self._url = libpq_url(url)
        self._channels = channels
        self.application_name = application_name
        self._retry_s = retry_s
        self._notes: queue.SimpleQueue[Note] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="listen", daemon=True)
        self.connected = False

    def start(self) -> None:
        """Connect and listen in the background (retrying while PostgreSQL is away)."""
        self._thread.start()

    def drain(self) -> list[Note]:
        """Everything that arrived since the last call; never blocks."""
        notes: list[Note] = []
        while True:
            try:
                notes.append(self._notes.get_nowait())
            except queue.Empty:
                return notes

    def stop(self, timeout_s: float = 3.0) -> None:
        """Stop the thread (it notices within WAIT_S) and close the connection."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while not self._stop.is_set():
            conn = self._connect()
            if conn is None:
                self._stop.wait(self._retry_s)
                continue
            try:
                self._listen(conn)
            except (psycopg.Error, OSError):
                log.warning("LISTEN connection lost; reconnecting", exc_info=True)
            finally:
                self.connected = False
                _close(conn)

    def _connect(self) -> psycopg.Connection[tuple[object, ...]] | None:
        try:
            conn = psycopg.connect(
                self._url,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_S,
                application_name=self.application_name,
                # A partitioned server must fail the round trip, not hang the thread.
                keepalives=1,
                keepalives_idle=5,
                keepalives_interval=2,
                keepalives_count=3,
                tcp_user_timeout=10_000,
            )
        except (psycopg.Error, OSError) as exc:
            log.warning("cannot LISTEN on PostgreSQL; retrying: %s", exc)
            return None
        try:
            for channel in self._channels:
                conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        except (psycopg.Error, OSError) as exc:
            log.warning("LISTEN refused; retrying: %s", exc)
            _close(conn)
            return None
        self.connected = True
        self._notes.put(RECONNECTED)
        return conn

    def _listen(self, conn: psycopg.Connection[tuple[object, ...]]) -> None:
        next_check = time.monotonic() + CHECK_EVERY_S
        while not self._stop.is_set():
            for note in conn.notifies(timeout=WAIT_S):
                self._notes.put((note.channel, note.payload))
            if time.monotonic() >= next_check:
                conn.execute("SELECT 1")
                next_check = time.monotonic() + CHECK_EVERY_S


def _close(conn: psycopg.Connection[tuple[object, ...]]) -> None:
    try:
        conn.close()
    except (psycopg.Error, OSError):
        log.debug("closing a dead LISTEN connection failed", exc_info=True)
