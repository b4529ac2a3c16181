"""Fencing: two processes never quote one symbol (ARCHITECTURE D17).

A worker holds a PostgreSQL session-level advisory lock on its symbol for its
whole life, on a connection of its own, and quotes only while it holds it. A
restarted worker waits for the lock, so it cannot overlap a predecessor that is
still winding down. If the lock's connection is lost the lock is gone too, and
the worker must pull its quotes and stop. A worker also asks the kernel to
signal it when its supervisor dies, so an orphan cancels its orders and exits.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import hashlib
import signal
import time

import psycopg

from mmsvc.adapters.db.engine import sqlalchemy_url

_PR_SET_PDEATHSIG = 1
_LOCK_PERSON = b"mmsvc-fence"  # keeps our keys apart from other users of advisory locks


def lock_key(symbol: str) -> int:
    """A stable signed 64-bit key for the symbol's advisory lock (collisions: ~2^-64)."""
    digest = hashlib.blake2b(symbol.encode(), digest_size=8, person=_LOCK_PERSON).digest()
    return int.from_bytes(digest, "big", signed=True)


def _libpq_url(url: str) -> str:
    return sqlalchemy_url(url).replace("postgresql+psycopg://", "postgresql://", 1)


class SymbolLock:
    """The advisory lock that entitles one process to quote one symbol."""

    def __init__(self, postgres_url: str, symbol: str) -> None:
        self._url = _libpq_url(postgres_url)
        self._key = lock_key(symbol)
        self._conn: psycopg.Connection[tuple[object, ...]] | None = None

    def acquire(self, timeout_s: float, poll_s: float = 0.2) -> bool:
        """Try to take the lock until ``timeout_s``; True once held."""
        deadline = time.monotonic() + timeout_s
        self._conn = psycopg.connect(self._url, autocommit=True, application_name="mmsvc-fence")
        while True:
            row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()
            if row is not None and row[0]:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(poll_s)

    def held(self) -> bool:
        """True while the lock's connection is alive (the lock dies with it)."""
        if self._conn is None or self._conn.closed:
            return False
        try:
            self._conn.execute("SELECT 1")
        except psycopg.Error:
            return False
        return True

    def release(self) -> None:
        if self._conn is not None and not self._conn.closed:
            with contextlib.suppress(psycopg.Error):
                self._conn.execute("SELECT pg_advisory_unlock(%s)", (self._key,))
            self._conn.close()


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> bool:
    """Ask Linux to send ``sig`` when the parent process dies; False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    return bool(libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0)
