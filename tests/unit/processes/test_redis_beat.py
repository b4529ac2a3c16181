"""The supervisor's Redis beat: the kill flag's copy never undoes a kill it raced (D25)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from mmsvc.adapters.db.records import KillFlag, RiskTrigger
from mmsvc.adapters.status.redis_store import Beat
from mmsvc.processes.supervisor.beat import RedisBeat

CLEAR = KillFlag(False, None, "", "system", None)
RAISED = KillFlag(True, RiskTrigger.MANUAL, "ops said so", "ops", datetime(2026, 1, 1, tzinfo=UTC))


class FakeStatus:
    """What the beat writes to Redis: the heartbeat's answers, the flag's copy."""

    def __init__(self, beats: list[Beat]) -> None:
        self.beats = beats
        self.copy: KillFlag | None = None
        self.on_write: Callable[[], None] = lambda: None

    def heartbeat(self, _process: str) -> Beat:
        return self.beats.pop(0)

    def set_kill_flag(self, reason: str, actor: str) -> bool:
        self.copy = KillFlag(True, RiskTrigger.MANUAL, reason, actor, None)
        self.on_write()
        return True

    def clear_kill_flag(self) -> bool:
        self.copy = CLEAR
        self.on_write()
        return True


def beat(status: FakeStatus, flags: list[KillFlag]) -> RedisBeat:
    """A beat reading PostgreSQL's flag from ``flags[0]`` (a test changes it)."""
    return RedisBeat(status, lambda: flags[0], 0.5)  # type: ignore[arg-type]


def test_the_first_beat_copies_the_flag_and_later_known_beats_leave_it() -> None:
    status = FakeStatus([Beat.NEW, Beat.KNOWN])
    redis_beat = beat(status, [RAISED])

    redis_beat.beat_once()
    assert (status.copy is not None and status.copy.active, redis_beat.stale) == (True, False)
    status.copy = None
    redis_beat.beat_once()
    assert status.copy is None


def test_a_kill_raised_while_the_copy_was_written_is_copied_again_not_cleared() -> None:
    flags = [CLEAR]
    status = FakeStatus([Beat.NEW])
    redis_beat = beat(status, flags)

    def kill_lands_meanwhile() -> None:  # the loop records a kill between read and write
        flags[0] = RAISED
        status.on_write = lambda: None

    status.on_write = kill_lands_meanwhile
    redis_beat.beat_once()

    assert status.copy is not None
    assert status.copy.active
    assert not redis_beat.stale


def test_unreachable_redis_leaves_the_copy_stale_until_it_answers() -> None:
    status = FakeStatus([Beat.UNREACHABLE, Beat.KNOWN])
    redis_beat = beat(status, [RAISED])

    redis_beat.beat_once()
    assert redis_beat.stale
    assert status.copy is None
    redis_beat.beat_once()
    assert not redis_beat.stale
    assert status.copy is not None


def test_a_stale_mark_made_during_a_copy_is_not_cleared_by_it() -> None:
    status = FakeStatus([Beat.NEW, Beat.KNOWN])
    redis_beat = beat(status, [RAISED])
    status.on_write = redis_beat.mark_stale  # the loop's own write of the flag failed meanwhile

    redis_beat.beat_once()
    assert redis_beat.stale
    status.on_write = lambda: None
    redis_beat.beat_once()
    assert not redis_beat.stale
