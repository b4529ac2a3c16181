"""The kill switch with stubs: a kill always lands (ARCHITECTURE D7, D25, D30; scenario 8)."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError

from mmsvc.domain.model import KillDecision, RiskTrigger, SymbolState
from mmsvc.processes.worker.killing import KillSwitch
from tests.unit.processes.worker.stubs import Clock, Store, trader


class Flattener:
    def __init__(self) -> None:
        self.started = 0

    def start_flatten(self) -> None:
        self.started += 1


TIMEOUT = KillDecision(RiskTrigger.RESPONSE_TIMEOUT, "place: 51 ms")


def switch(store: Store, state: SymbolState = SymbolState.ACTIVE):  # type: ignore[no-untyped-def]
    t, flattener, clock = trader(state), Flattener(), Clock()
    kill = KillSwitch(t, store, flattener, clock_ms=clock)
    store.before_write = kill.require_recorded
    return t, kill, flattener, clock


def test_a_kill_acts_in_memory_at_once_even_when_postgresql_refuses_it() -> None:
    store = Store()
    store.fail_halts = 1
    t, kill, flattener, _ = switch(store)
    assert kill.fire(TIMEOUT, actor="system")
    assert t.state is SymbolState.HALTED
    assert t.triggers == [RiskTrigger.RESPONSE_TIMEOUT]
    assert flattener.started == 1
    assert kill.unrecorded == TIMEOUT
    assert store.halts == []


def test_a_kill_lost_to_a_database_error_is_recorded_before_anything_else_is_written() -> None:
    store = Store()
    store.fail_halts = 1
    _t, kill, _, _ = switch(store)
    kill.fire(TIMEOUT, actor="system")
    store.order_statuses([])  # the next write of any kind records the kill first
    assert store.halts == [TIMEOUT]
    assert kill.unrecorded is None


def test_a_write_is_not_made_while_the_kill_cannot_be_recorded() -> None:
    store = Store()
    store.fail_halts = 2
    _, kill, _, _ = switch(store)
    kill.fire(TIMEOUT, actor="system")
    with pytest.raises(OperationalError):
        store.insert_pending([])
    assert store.pending == []
    assert kill.unrecorded == TIMEOUT


def test_the_loop_retries_the_record_with_backoff() -> None:
    store = Store()
    store.fail_halts = 2
    _, kill, _, clock = switch(store)
    kill.fire(TIMEOUT, actor="system")  # attempt 1 fails
    kill.retry()  # not yet due
    assert store.fail_halts == 1
    clock.now += 60
    kill.retry()  # attempt 2 fails
    clock.now += 60
    kill.retry()  # backoff doubled: not yet
    assert store.halts == []
    clock.now += 60
    kill.retry()
    assert store.halts == [TIMEOUT]


def test_the_worker_never_exits_with_a_kill_unrecorded() -> None:
    store = Store()
    store.fail_halts = 4
    _, kill, _, _ = switch(store)
    kill.fire(TIMEOUT, actor="system")
    sleeps: list[float] = []
    kill.record_before_exit(sleep=sleeps.append)
    assert store.halts == [TIMEOUT]
    assert len(sleeps) == 3


def test_a_symbol_already_halted_keeps_its_first_trigger() -> None:
    store = Store()
    t, kill, flattener, _ = switch(store)
    kill.fire(TIMEOUT, actor="system")
    assert not kill.fire(KillDecision(RiskTrigger.LOSS, "x"), actor="system")
    assert t.triggers == [RiskTrigger.RESPONSE_TIMEOUT]
    assert store.halts == [TIMEOUT]
    assert flattener.started == 2  # but it cancels again


def test_a_kill_recorded_straight_in_postgresql_is_taken_up() -> None:
    """Scenario 5: a kill for a worker not yet connected, or by the admin (D23, D30)."""
    store = Store()
    t, kill, flattener, _ = switch(store, SymbolState.PAUSED)
    assert kill.adopt(SymbolState.HALTED, [RiskTrigger.MANUAL])
    assert t.state is SymbolState.HALTED
    assert t.triggers == [RiskTrigger.MANUAL]
    assert flattener.started == 1
    assert store.halts == []
