"""One OS process per symbol: start, notice death, restart with crash-loop backoff.

A worker that dies has its orders canceled at once by the supervisor (the
``on_death`` callback, ARCHITECTURE D2) and is started again; it reloads its
state from PostgreSQL and comes back PAUSED, or still HALTED (D3). A worker
that keeps dying soon after start waits longer each time (1 s doubling to
30 s), so a crash loop cannot hammer the Order Service or the database.

Many symbols on one host (D27): starts and restarts wait in a queue and leave
it at a bounded rate (at most ``max_starting`` workers between launch and
HELLO, at most ``starts_per_s`` launches a second), so a restart with hundreds
of symbols never starves the box into a kill loop. The silence rule (a worker
that says nothing on the control channel is hung and killed) gives a worker
that has not yet said HELLO a start-up grace (``STARTUP_GRACE_S``); after
HELLO the normal limit applies. A queued worker has no process: commands for
it are answered as for any worker not yet connected.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from mmsvc.domain.ratelimit import TokenBucket
from mmsvc.processes.worker import HANDED_BACK_ARG

log = logging.getLogger(__name__)

FIRST_BACKOFF_S = 1.0
MAX_BACKOFF_S = 30.0
STABLE_AFTER_S = 60.0
STARTUP_GRACE_S = 60.0  # D27: silence allowed before a (re)started worker's HELLO
MAX_STARTING = 16  # D27: workers launched and not yet greeted, at most
STARTS_PER_S = 20  # D27: launches a second, at most (a quarter second's worth at once)
# D27: wall time one poll may spend launching; the rest wait for the next poll. A fork
# asks the template and waits for its answer: on a starved box that is slow, and the
# supervisor's loop (heartbeats, routing) must not stall behind a burst of launches.
LAUNCH_BUDGET_S = 0.1


class ChildProcess(Protocol):
    """What the pool needs of a worker process (a ``Popen`` or a forked child)."""

    @property
    def pid(self) -> int: ...

    @property
    def returncode(self) -> int | None: ...

    def poll(self) -> int | None: ...

    def wait(self, timeout: float | None = None) -> int: ...

    def kill(self) -> None: ...

    def send_signal(self, sig: int) -> None: ...


class Launcher(Protocol):
    """Starts a symbol's worker process, with extra worker ``args``; None means "not now,
    keep it queued"."""

    def __call__(self, symbol: str, args: Sequence[str] = ()) -> ChildProcess | None: ...


@dataclass(slots=True)
class WorkerProcess:
    """A symbol's worker process and its restart bookkeeping."""

    symbol: str
    proc: ChildProcess | None = None
    started_at: float = 0.0
    restart_at: float | None = None
    backoff_s: float = 0.0
    restarts: int = 0
    queued: bool = False
    greeted: bool = False  # said HELLO since this process started
    handed_back: bool = False  # for the next launch only (HANDED_BACK_ARG)

    @property
    def pid(self) -> int | None:
        return None if self.proc is None else self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def fresh_interpreter(
    argv_for: Callable[[str], Sequence[str]], env: Mapping[str, str]
) -> Callable[[str, Sequence[str]], ChildProcess]:
    """The plain launcher: a new Python interpreter per worker."""
    env = dict(env)

    def launch(symbol: str, args: Sequence[str] = ()) -> ChildProcess:
        return subprocess.Popen([*argv_for(symbol), *args], env=env)

    return launch


class WorkerPool:
    """Keeps one worker process running per symbol until told to stop it."""

    def __init__(
        self,
        argv_for: Callable[[str], Sequence[str]],
        env: Mapping[str, str],
        on_death: Callable[[str, int], None],
        clock: Callable[[], float] = time.monotonic,
        on_exit: Callable[[int], None] = lambda _pid: None,
        *,
        launcher: Launcher | None = None,
        max_starting: int = MAX_STARTING,
        starts_per_s: int = STARTS_PER_S,
    ) -> None:
        self._launch = launcher if launcher is not None else fresh_interpreter(argv_for, env)
        self._on_death = on_death
        self._on_exit = on_exit  # every reaped pid, before a replacement starts (metrics files)
        self._clock = clock
        self._max_starting = max_starting
        # the housekeeping tick is 0.25 s: a burst of a quarter second's starts keeps the rate
        self._starts = TokenBucket(starts_per_s, _ms(clock()), burst=max(1, starts_per_s // 4))
        self._queue: deque[str] = deque()
        self.workers: dict[str, WorkerProcess] = {}

    def start(self, symbol: str, *, handed_back: bool = False) -> WorkerProcess:
        """Queue the symbol's worker and launch what the rate allows (no-op when running).

        ``handed_back``: the group gave the symbol back to this supervisor, which had
        stopped its worker at the revocation (D28); told to that launch only, never to
        a restart after a death (D29: a crash gives PAUSED).
        """
        worker = self.workers.setdefault(symbol, WorkerProcess(symbol))
        if worker.alive() or worker.queued:
            return worker
        worker.handed_back = handed_back
        worker.restart_at = None
        worker.queued = True
        self._queue.append(symbol)
        self._launch_due(self._clock())
        return worker

    def hello(self, symbol: str) -> None:
        """The worker said HELLO: it is started (frees a start slot) and judged by silence."""
        worker = self.workers.get(symbol)
        if worker is not None and worker.alive():
            worker.greeted = True

    def queued(self) -> list[str]:
        """Symbols waiting for a start slot, in order."""
        return list(self._queue)

    def starting(self, now: float) -> int:
        """Workers launched and not yet greeted, still within their grace."""
        return sum(
            1
            for w in self.workers.values()
            if not w.greeted and w.alive() and now - w.started_at < STARTUP_GRACE_S
        )

    def stop(self, symbol: str, grace_s: float = 10.0) -> None:
        """Stop the symbol's worker for good: SIGTERM, then SIGKILL after the grace period."""
        worker = self.workers.pop(symbol, None)
        with contextlib.suppress(ValueError):
            self._queue.remove(symbol)
        if worker is not None and worker.proc is not None:
            _terminate([worker.proc], grace_s)
            self._on_exit(worker.proc.pid)

    def stop_all(self, grace_s: float = 10.0) -> None:
        """Stop every worker at once (they cancel their own orders on SIGTERM)."""
        self.stop_many(list(self.workers), grace_s)

    def stop_many(self, symbols: Sequence[str], grace_s: float = 10.0) -> None:
        """Stop these symbols' workers for good, all at once (revoked partitions, D28)."""
        stopping = [self.workers.pop(s) for s in symbols if s in self.workers]
        for worker in stopping:
            with contextlib.suppress(ValueError):
                self._queue.remove(worker.symbol)
        procs = [w.proc for w in stopping if w.proc is not None]
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
            limit = silent_s if worker.greeted else grace_s
            if now - since > limit:
                found.append((symbol, now - since))
        return found

    def poll(self) -> list[str]:
        """Notice dead workers, report them once, queue restarts whose backoff is over, launch."""
        now = self._clock()
        died: list[str] = []
        for worker in list(self.workers.values()):
            if worker.proc is not None and worker.proc.poll() is not None:
                died.append(worker.symbol)
                self._schedule_restart(worker, now)
            if worker.restart_at is not None and now >= worker.restart_at:
                worker.restarts += 1
                self.start(worker.symbol)
        self._launch_due(now)
        return died

    def _launch_due(self, now: float) -> None:
        budget_ends = time.monotonic() + LAUNCH_BUDGET_S
        while self._queue and self._starts.available(_ms(now)) > 0:
            if self.starting(now) >= self._max_starting or time.monotonic() > budget_ends:
                return
            symbol = self._queue[0]
            worker = self.workers.get(symbol)
            if worker is None or worker.alive():
                self._queue.popleft()
                continue
            proc = self._launch(symbol, (HANDED_BACK_ARG,) if worker.handed_back else ())
            if proc is None:
                return  # the launcher is not ready (the template is starting): keep the queue
            self._queue.popleft()
            worker.handed_back = False
            worker.proc = proc
            worker.queued = False
            worker.greeted = False
            worker.started_at = now
            self._starts.try_acquire(_ms(now))
            log.info("worker started", extra={"symbol": symbol, "worker_pid": proc.pid})

    def _schedule_restart(self, worker: WorkerProcess, now: float) -> None:
        if worker.proc is None:
            raise RuntimeError(f"{worker.symbol}: a restart scheduled with no process")
        code = worker.proc.returncode
        if code is None:
            raise RuntimeError(f"{worker.symbol}: a restart scheduled for a live process")
        self._on_exit(worker.proc.pid)
        worker.proc = None
        worker.greeted = False
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


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _terminate(procs: Sequence[ChildProcess], grace_s: float) -> None:
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
