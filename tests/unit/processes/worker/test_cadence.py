"""When an idle worker writes its status and heartbeat, and how long its loop sleeps (issue 13)."""

from __future__ import annotations

from decimal import Decimal

from mmsvc.domain.model import Order, Side, SymbolState
from mmsvc.processes.supervisor.main import WORKER_SILENT_S
from mmsvc.processes.worker.cadence import (
    HEARTBEAT_S,
    MAX_SLEEP_MS,
    STATUS_KEEPALIVE_S,
    Keepalive,
    StatusCadence,
    sleep_ms,
    status_key,
)
from mmsvc.processes.worker.main import STATUS_TTL_S
from tests.unit.processes.worker.stubs import book, trader


class Time:
    """Monotonic seconds that move only when a test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def written(cadence: StatusCadence, key: tuple[object, ...]) -> bool:
    """What the worker's loop does: write when due."""
    if cadence.due(key):
        cadence.written(key)
        return True
    return False


def test_an_unchanged_status_is_written_only_by_the_keepalive():
    time = Time()
    cadence = StatusCadence(min_s=0.25, keepalive_s=1.0, clock=time)
    assert written(cadence, ("ACTIVE",)), "the first status goes at once"
    writes = 0
    for _ in range(32):  # four seconds of 125 ms loop turns
        time.now += 0.125
        writes += written(cadence, ("ACTIVE",))
    assert writes == 4


def test_a_change_is_written_at_once_when_the_last_write_is_old_enough():
    time = Time()
    cadence = StatusCadence(min_s=0.25, keepalive_s=1.0, clock=time)
    written(cadence, ("ACTIVE",))
    time.now += 0.3
    assert written(cadence, ("HALTED",))


def test_a_change_soon_after_a_write_waits_for_the_minimum_spacing_and_is_not_lost():
    time = Time()
    cadence = StatusCadence(min_s=0.25, keepalive_s=1.0, clock=time)
    written(cadence, ("ACTIVE",))
    time.now += 0.1
    assert not written(cadence, ("PAUSED",))
    assert cadence.next_due() == 100.25, "the loop wakes for the pending change"
    time.now = 100.25
    assert written(cadence, ("PAUSED",))
    assert cadence.next_due() == 101.25, "then only the keepalive"


def test_a_status_written_out_of_turn_restarts_the_keepalive():
    time = Time()
    cadence = StatusCadence(min_s=0.25, keepalive_s=1.0, clock=time)
    written(cadence, ("ACTIVE",))
    time.now += 0.5
    cadence.written(("HALTED",))  # a kill writes at once (its on_change)
    time.now += 0.9
    assert not cadence.due(("HALTED",))
    time.now += 0.1
    assert cadence.due(("HALTED",))


def test_the_status_keepalive_is_well_inside_the_status_ttl():
    assert STATUS_KEEPALIVE_S <= STATUS_TTL_S / 5


def test_the_status_key_changes_with_what_an_operator_acts_on_and_not_with_prices():
    t = trader()
    book(t, "99.99", "100.01", seq=1)
    before = status_key(t)
    book(t, "99.98", "100.02", seq=2)
    assert status_key(t) == before, "a new book alone waits for the keepalive"
    t.orders["a"] = Order("a", None, Side.BUY, Decimal("99"), Decimal("1"))
    with_order = status_key(t)
    assert with_order != before
    t.orders["a"] = Order("a", "o-1", Side.BUY, Decimal("99"), Decimal("1"))
    assert status_key(t) != with_order, "an acknowledged order is news"
    acked = status_key(t)
    t.state = SymbolState.PAUSED
    assert status_key(t) != acked


def test_the_heartbeat_goes_only_after_a_quiet_keepalive_interval():
    time = Time()
    keepalive = Keepalive(2.0, clock=time)
    assert keepalive.due(), "nothing sent yet"
    keepalive.sent()
    time.now += 1.9
    assert not keepalive.due()
    keepalive.sent()  # an ack: the supervisor knows we live
    time.now += 1.9
    assert not keepalive.due()
    time.now += 0.1
    assert keepalive.due()


def test_the_supervisors_silence_rule_is_ten_keepalives_of_the_worker():
    assert WORKER_SILENT_S >= 10 * HEARTBEAT_S


def test_the_loop_sleeps_until_the_next_timer_within_its_bounds():
    assert sleep_ms(10.0, 10.05) == 51, "never wakes before the timer"
    assert sleep_ms(10.0, 9.0) == 1, "an overdue timer: poll, do not block"
    assert sleep_ms(10.0, 20.0) == MAX_SLEEP_MS
    assert sleep_ms(10.0, float("inf")) == MAX_SLEEP_MS


def test_a_timer_due_since_forever_is_overdue_not_a_crash():
    """A keepalive that never sent anything is due at -inf (a shadow worker crash-looped)."""
    assert sleep_ms(10.0, float("-inf")) == 1
    assert sleep_ms(10.0, Keepalive(clock=lambda: 10.0).next_due()) == 1
