"""One OS process per symbol: start, notice death, restart with crash-loop backoff.

A worker that dies has its orders canceled at once by the supervisor (the
``on_death`` callback, ARCHITECTURE D2) and is started again; it reloads its
state from PostgreSQL and comes back PAUSED, or still HALTED (D3). A worker
that keeps dying soon after start waits longer each time (1 s doubling to
30 s), so a crash loop cannot hammer the Order Service or the database.

The silence rule (a worker that says nothing on the control channel is hung
and killed) gives a worker that has not yet said HELLO a start-up grace
(``STARTUP_GRACE_S``), since importing and connecting under load can take
many seconds; after HELLO the normal limit applies (ARCHITECTURE D27).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
STABLE_AFTER_S = 60.0
STARTUP_GRACE_S = 60.0  # D27: silence allowed before a (re)started worker's HELLO


@dataclass(slots=True)
class WorkerProcess:
    """A symbol's worker process and its restart bookkeeping."""

    symbol: str
    proc: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    backoff_s: float = 0.0
    restarts: int = 0

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


class WorkerPool:
    """Keeps one worker process running per symbol until told to stop it."""

    def __init__(
        self,
        argv_for: Callable[[str], Sequence[str]],
        env: Mapping[str, str],
        on_death: Callable[[str, int], None],
        clock: Callable[[], float] = time.monotonic,
        on_exit: Callable[[int], None] = lambda _pid: None,
    ) -> None:
        self._argv_for = argv_for
        self._env = dict(env)
        self._on_death = on_death
        self._on_exit = on_exit  # every reaped pid, before a replacement starts (metrics files)
        self._clock = clock
        self.workers: dict[str, WorkerProcess] = {}

    def start(self, symbol: str) -> WorkerProcess:
        """Start the symbol's worker now (no-op when it is already running)."""
        worker = self.workers.setdefault(symbol, WorkerProcess(symbol))
        if worker.alive():
            return worker
        worker.proc = subprocess.Popen(list(self._argv_for(symbol)), env=self._env)
        worker.started_at = self._clock()
        worker.restart_at = None
        log.info("worker started", extra={"symbol": symbol, "worker_pid": worker.proc.pid})
        return worker

    def stop(self, symbol: str, grace_s: float = 10.0) -> None:
        """Stop the symbol's worker for good: SIGTERM, then SIGKILL after the grace period."""
        worker = self.workers.pop(symbol, None)
        if worker is not None and worker.proc is not None:
            _terminate([worker.proc], grace_s)
            self._on_exit(worker.proc.pid)

    def stop_all(self, grace_s: float = 10.0) -> None:
        """Stop every worker at once (they cancel their own orders on SIGTERM)."""
        procs = [w.proc for w in self.workers.values() if w.proc is not None]
        self.workers.clear()
        _terminate(procs, grace_s)
        for proc in procs:
            self._on_exit(proc.pid)

    def kill(self, symbol: str) -> None:
        """SIGKILL the symbol's worker (a hung one); ``poll`` then reports its death (D2)."""
        worker = self.workers.get(symbol)
        if worker is not None and worker.proc is not None:
            with contextlib.suppress(ProcessLookupError):
                worker.proc.kill()

    def silent(
        self,
        now: float,
        last_seen: Mapping[str, float],
        greeted: Collection[str],
        silent_s: float,
        grace_s: float = STARTUP_GRACE_S,
    ) -> list[tuple[str, float]]:
        """Live workers silent too long, with how long: ``grace_s`` before HELLO, then ``silent_s``.

        Silence counts from the later of the last message and the (re)start, so a
        restarted worker is never judged by its predecessor's last word (D27).
        """
        found: list[tuple[str, float]] = []
        for symbol, worker in self.workers.items():
            if not worker.alive():
                continue
            since = max(last_seen.get(symbol, worker.started_at), worker.started_at)
            limit = silent_s if symbol in greeted else grace_s
            if now - since > limit:
                found.append((symbol, now - since))
        return found

    def poll(self) -> list[str]:
        """Notice dead workers, report them once, and restart those whose backoff is over."""
        now = self._clock()
        died: list[str] = []
        for worker in list(self.workers.values()):
            if worker.proc is not None and worker.proc.poll() is not None:
                died.append(worker.symbol)
                self._schedule_restart(worker, now)
            if worker.restart_at is not None and now >= worker.restart_at:
                worker.restarts += 1
                self.start(worker.symbol)
        return died

    def _schedule_restart(self, worker: WorkerProcess, now: float) -> None:
        if worker.proc is None:
            raise RuntimeError(f"{worker.symbol}: a restart scheduled with no process")
        code = worker.proc.returncode
        self._on_exit(worker.proc.pid)
        worker.proc = None
        stable = now - worker.started_at >= STABLE_AFTER_S
        worker.backoff_s = (
            0.0 if stable else min(MAX_BACKOFF_S, max(FIRST_BACKOFF_S, worker.backoff_s * 2))
        )
        worker.restart_at = now + worker.backoff_s
        log.warning(
            "worker died; restarting",
            extra={"symbol": worker.symbol, "exit_code": code, "backoff_s": worker.backoff_s},
        )
        self._on_death(worker.symbol, code)


def _terminate(procs: Sequence[subprocess.Popen[bytes]], grace_s: float) -> None:
    for proc in procs:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for proc in procs:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
