"""Worker processes: death is reported once, restarts back off in a crash loop (D2)."""

from __future__ import annotations

import sys

from mmsvc.processes.supervisor.pool import FIRST_BACKOFF_S, STARTUP_GRACE_S, WorkerPool


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def wait_dead(pool: WorkerPool, symbol: str) -> None:
    proc = pool.workers[symbol].proc
    assert proc is not None
    proc.wait(timeout=10)


def test_a_dead_worker_is_reported_once_and_restarted_with_backoff() -> None:
    deaths: list[tuple[str, int]] = []
    clock = FakeClock()
    pool = WorkerPool(
        argv_for=lambda _s: [sys.executable, "-c", "raise SystemExit(3)"],
        env={},
        on_death=lambda s, code: deaths.append((s, code)),
        clock=clock,
    )
    pool.start("BTCUSDT")
    wait_dead(pool, "BTCUSDT")
    assert pool.poll() == ["BTCUSDT"]
    assert deaths == [("BTCUSDT", 3)]
    assert pool.poll() == []  # reported once; waiting out the backoff
    clock.now += FIRST_BACKOFF_S
    pool.poll()
    assert pool.workers["BTCUSDT"].restarts == 1
    wait_dead(pool, "BTCUSDT")
    pool.poll()
    assert pool.workers["BTCUSDT"].backoff_s == 2 * FIRST_BACKOFF_S
    pool.stop_all(grace_s=1)


def test_stop_terminates_a_running_worker() -> None:
    pool = WorkerPool(
        argv_for=lambda _s: [sys.executable, "-c", "import time; time.sleep(60)"],
        env={},
        on_death=lambda _s, _code: None,
    )
    worker = pool.start("ETHUSDT")
    assert worker.alive()
    pool.stop("ETHUSDT", grace_s=5)
    assert not worker.alive()
    assert "ETHUSDT" not in pool.workers


def sleeper_pool(clock: FakeClock) -> WorkerPool:
    return WorkerPool(
        argv_for=lambda _s: [sys.executable, "-c", "import time; time.sleep(60)"],
        env={},
        on_death=lambda _s, _code: None,
        clock=clock,
    )


def test_a_worker_that_has_not_said_hello_gets_the_startup_grace() -> None:
    """D27: a slow start is not a hang; the silence rule waits STARTUP_GRACE_S for HELLO."""
    clock = FakeClock()
    pool = sleeper_pool(clock)
    try:
        pool.start("BTCUSDT")
        stale = {"BTCUSDT": clock.now - 1000.0}  # a predecessor's last word does not count
        clock.now += 30.0
        assert pool.silent(clock.now, stale, greeted=set(), silent_s=10.0) == []
        clock.now += STARTUP_GRACE_S
        found = pool.silent(clock.now, stale, greeted=set(), silent_s=10.0)
        assert [symbol for symbol, _ in found] == ["BTCUSDT"]
    finally:
        pool.stop_all(grace_s=1)


def test_after_hello_the_normal_silence_rule_applies() -> None:
    clock = FakeClock()
    pool = sleeper_pool(clock)
    try:
        pool.start("BTCUSDT")
        clock.now += 5.0
        seen = {"BTCUSDT": clock.now}
        clock.now += 9.0
        assert pool.silent(clock.now, seen, greeted={"BTCUSDT"}, silent_s=10.0) == []
        clock.now += 2.0
        assert pool.silent(clock.now, seen, greeted={"BTCUSDT"}, silent_s=10.0) == [
            ("BTCUSDT", 11.0)
        ]
    finally:
        pool.stop_all(grace_s=1)
