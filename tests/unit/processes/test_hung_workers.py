"""The supervisor's hung-worker check gives every (re)started worker its full hello window."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from mmsvc.processes.supervisor.main import WORKER_SILENT_S, Supervisor
from mmsvc.processes.supervisor.pool import WorkerProcess


class _Proc:
    """A running process that records being killed."""

    pid = 4242
    killed = False

    def poll(self) -> None:
        return None

    def kill(self) -> None:
        self.killed = True


def _check(started_at: float, last_seen: float, now: float) -> bool:
    proc: Any = _Proc()
    worker = WorkerProcess("BTCUSDT", proc=proc, started_at=started_at)
    fake = SimpleNamespace(
        pool=SimpleNamespace(workers={"BTCUSDT": worker}), last_seen={"BTCUSDT": last_seen}
    )
    Supervisor._kill_hung_workers(fake, now)  # type: ignore[arg-type]
    return bool(proc.killed)


def test_a_worker_restarted_after_a_long_backoff_is_not_killed_for_its_predecessors_silence() -> (
    None
):
    # The predecessor was last heard at t=0; after a 16 s backoff (D2) its successor starts.
    assert not _check(started_at=16.0, last_seen=0.0, now=16.5)


def test_a_worker_silent_since_its_own_start_is_still_killed() -> None:
    assert _check(started_at=16.0, last_seen=0.0, now=16.0 + WORKER_SILENT_S + 0.5)
