"""Worker processes: death is reported once, restarts back off in a crash loop (D2)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from mmsvc.processes.supervisor.pool import FIRST_BACKOFF_S, STARTUP_GRACE_S, WorkerPool
from mmsvc.processes.worker import HANDED_BACK_ARG


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
        assert pool.silent(clock.now, stale, silent_s=10.0) == []
        clock.now += STARTUP_GRACE_S
        found = pool.silent(clock.now, stale, silent_s=10.0)
        assert [symbol for symbol, _ in found] == ["BTCUSDT"]
    finally:
        pool.stop_all(grace_s=1)


def test_after_hello_the_normal_silence_rule_applies() -> None:
    clock = FakeClock()
    pool = sleeper_pool(clock)
    try:
        pool.start("BTCUSDT")
        clock.now += 5.0
        pool.hello("BTCUSDT")
        seen = {"BTCUSDT": clock.now}
        clock.now += 9.0
        assert pool.silent(clock.now, seen, silent_s=10.0) == []
        clock.now += 2.0
        assert pool.silent(clock.now, seen, silent_s=10.0) == [("BTCUSDT", 11.0)]
    finally:
        pool.stop_all(grace_s=1)


class FakeChild:
    """A process that lives until told otherwise (the launcher is the pool's seam)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        del timeout
        self.returncode = -9 if self.returncode is None else self.returncode
        return self.returncode

    def kill(self) -> None:
        self.returncode = -9

    def send_signal(self, sig: int) -> None:
        self.returncode = -sig


class FakeLauncher:
    def __init__(self) -> None:
        self.launched: list[str] = []
        self.args: list[tuple[str, ...]] = []
        self.children: dict[str, FakeChild] = {}
        self.ready = True

    def __call__(self, symbol: str, args: Sequence[str] = ()) -> FakeChild | None:
        if not self.ready:
            return None
        self.launched.append(symbol)
        self.args.append(tuple(args))
        child = FakeChild(1000 + len(self.launched))
        self.children[symbol] = child
        return child


def rated_pool(clock: FakeClock, launcher: FakeLauncher, **limits: float) -> WorkerPool:
    return WorkerPool(
        argv_for=lambda _s: [],
        env={},
        on_death=lambda _s, _code: None,
        clock=clock,
        launcher=launcher,
        max_starting=int(limits.get("max_starting", 100)),
        starts_per_s=int(limits.get("starts_per_s", 1000)),
    )


def test_starts_leave_the_queue_at_the_bounded_rate() -> None:
    """D27: at most starts_per_s launches a second; the rest wait their turn, in order."""
    clock = FakeClock()
    launcher = FakeLauncher()
    pool = rated_pool(clock, launcher, starts_per_s=2.0)
    symbols = [f"S{i}USDT" for i in range(5)]
    for symbol in symbols:
        pool.start(symbol)
    assert launcher.launched == ["S0USDT"]
    assert pool.queued() == symbols[1:]
    assert not pool.workers["S1USDT"].alive()
    clock.now += 0.5
    pool.poll()
    assert launcher.launched == symbols[:2]
    clock.now += 10.0
    pool.poll()  # a pause saves no more than the burst (a quarter second's worth, at least 1)
    assert launcher.launched == symbols[:3]


def test_the_rate_holds_when_the_pool_is_polled_less_often_than_the_gap() -> None:
    """The supervisor polls every 0.25 s: 20 starts a second must still be 20, not 4."""
    clock = FakeClock()
    launcher = FakeLauncher()
    pool = rated_pool(clock, launcher, starts_per_s=20)
    for i in range(40):
        pool.start(f"S{i}USDT")
    for _ in range(8):
        clock.now += 0.25
        pool.poll()
    assert pool.queued() == []  # 2 s at 20 a second (and the first burst): all 40 started


def test_at_most_max_starting_workers_are_between_launch_and_hello() -> None:
    """D27: a slow box holds the queue rather than piling up more interpreters."""
    clock = FakeClock()
    launcher = FakeLauncher()
    pool = rated_pool(clock, launcher, max_starting=2)
    for i in range(4):
        pool.start(f"S{i}USDT")
    assert launcher.launched == ["S0USDT", "S1USDT"]
    pool.poll()
    assert launcher.launched == ["S0USDT", "S1USDT"]
    pool.hello("S0USDT")
    pool.poll()
    assert launcher.launched == ["S0USDT", "S1USDT", "S2USDT"]
    clock.now += STARTUP_GRACE_S  # a launch that never greets frees its slot after the grace
    pool.poll()
    assert launcher.launched == ["S0USDT", "S1USDT", "S2USDT", "S3USDT"]


def test_a_launcher_that_is_not_ready_keeps_the_queue() -> None:
    clock = FakeClock()
    launcher = FakeLauncher()
    launcher.ready = False
    pool = rated_pool(clock, launcher)
    pool.start("BTCUSDT")
    pool.poll()
    assert pool.queued() == ["BTCUSDT"]
    launcher.ready = True
    pool.poll()
    assert pool.queued() == []
    assert pool.workers["BTCUSDT"].alive()


def test_a_queued_worker_stopped_for_good_leaves_the_queue() -> None:
    clock = FakeClock()
    launcher = FakeLauncher()
    pool = rated_pool(clock, launcher, max_starting=1)
    pool.start("BTCUSDT")
    pool.start("ETHUSDT")
    pool.stop("ETHUSDT")
    pool.hello("BTCUSDT")
    pool.poll()
    assert launcher.launched == ["BTCUSDT"]
    assert "ETHUSDT" not in pool.workers


def test_a_restart_after_death_goes_through_the_queue() -> None:
    """D2 then D27: a dead worker is reported, and its restart waits for a start slot."""
    clock = FakeClock()
    launcher = FakeLauncher()
    deaths: list[str] = []
    pool = WorkerPool(
        argv_for=lambda _s: [],
        env={},
        on_death=lambda s, _code: deaths.append(s),
        clock=clock,
        launcher=launcher,
        max_starting=1,
    )
    pool.start("BTCUSDT")
    pool.start("ETHUSDT")
    pool.hello("BTCUSDT")
    pool.poll()
    launcher.children["BTCUSDT"].kill()
    clock.now += FIRST_BACKOFF_S
    assert pool.poll() == ["BTCUSDT"]
    assert deaths == ["BTCUSDT"]
    clock.now += FIRST_BACKOFF_S
    pool.poll()
    assert pool.queued() == ["BTCUSDT"]  # ETHUSDT has not said HELLO: the slot is taken
    pool.hello("ETHUSDT")
    pool.poll()
    assert launcher.launched == ["BTCUSDT", "ETHUSDT", "BTCUSDT"]


def test_a_worker_handed_back_is_told_so_once_and_its_restart_is_not() -> None:
    """D28, D29: a symbol the group gave back to the supervisor that handed it over keeps
    its recorded state; a restart after that worker dies is a restart (PAUSED)."""
    clock = FakeClock()
    launcher = FakeLauncher()
    pool = rated_pool(clock, launcher)
    pool.start("BTCUSDT", handed_back=True)
    pool.start("ETHUSDT")
    launcher.children["BTCUSDT"].kill()
    clock.now += FIRST_BACKOFF_S
    pool.poll()
    clock.now += FIRST_BACKOFF_S
    pool.poll()
    assert launcher.launched == ["BTCUSDT", "ETHUSDT", "BTCUSDT"]
    assert launcher.args == [(HANDED_BACK_ARG,), (), ()]
