"""The supervisor's Redis writes, off its loop (ARCHITECTURE D25).

The supervisor's loop routes market data, relays control requests and watches
its workers; a Redis call that waits out a socket timeout there (a Redis that
accepts connections and does not answer) would stall all of that, once per
pause of the store's breaker. So its heartbeat, and the copy of PostgreSQL's
kill flag that a Redis which lost it (restarted empty, or unreachable for a
while) needs again, are written by a thread of their own, the way a worker's
live status is (`StatusPublisher`).

The copy never undoes a kill: the loop may raise or clear the flag (in
PostgreSQL, then in Redis) while this thread copies an older reading, so a
copy counts as done only when PostgreSQL's flag was the same before and after
the write; otherwise it is copied again. A loop whose own Redis write of the
flag failed marks the copy stale (``mark_stale``), and a copy that started
before that mark does not clear it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from mmsvc.adapters.db.records import KillFlag
from mmsvc.adapters.status.redis_store import Beat, StatusStore

log = logging.getLogger("mmsvc.supervisor.beat")

COPY_TRIES = 3


class RedisBeat:
    """A thread: the supervisor's heartbeat in Redis and the kill flag's copy kept there."""

    def __init__(
        self,
        status: StatusStore,
        read_flag: Callable[[], KillFlag | None],
        interval_s: float,
        *,
        process: str = "supervisor",
    ) -> None:
        """``read_flag``: PostgreSQL's kill flag, None when PostgreSQL did not answer."""
        self._status = status
        self._read_flag = read_flag
        self._interval_s = interval_s
        self._process = process
        self._lock = threading.Lock()
        self._marked = 1  # bumped by every mark_stale; the copy starts out stale
        self._copied = 0  # the mark the last complete copy covered
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="redis-beat", daemon=True)

    @property
    def stale(self) -> bool:
        """True while Redis's copy of the kill flag may differ from PostgreSQL's."""
        with self._lock:
            return self._copied < self._marked

    def mark_stale(self) -> None:
        """Redis may not hold PostgreSQL's flag (a write of it failed): copy it again."""
        with self._lock:
            self._marked += 1

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        while True:
            try:
                self.beat_once()
            except Exception:  # a bug here must not end the heartbeat for good
                log.exception("Redis heartbeat failed")
            if self._stop.wait(self._interval_s):
                return

    def beat_once(self) -> None:
        """One heartbeat; then the kill flag's copy, when Redis answered and may lack it."""
        beat = self._status.heartbeat(self._process)
        if beat is not Beat.KNOWN:  # unreachable, or back without our heartbeat: maybe empty
            self.mark_stale()
        if beat is Beat.UNREACHABLE:
            return
        with self._lock:
            mark = self._marked
            if self._copied >= mark:
                return
        if self._copy():
            with self._lock:
                self._copied = max(self._copied, mark)

    def _copy(self) -> bool:
        """Copy PostgreSQL's flag to Redis; True once the flag held still across the write."""
        for _ in range(COPY_TRIES):
            flag = self._read_flag()
            if flag is None:
                return False
            if flag.active:
                written = self._status.set_kill_flag(flag.reason, flag.actor)
            else:
                written = self._status.clear_kill_flag()
            if not written:
                return False
            if self._read_flag() == flag:
                return True
        return False
