"""A decision on unchanged inputs is skipped, and STALE_DATA still fires on its tick (issue 13).

The worker is built without its adapters: the real core (SymbolTrader), the
real OrderExecution and KillSwitch over the stub venue and store, and the
worker's own `_requote` on a clock the test moves.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from mmsvc.domain import engine
from mmsvc.domain import trader as trader_module
from mmsvc.domain.engine import QuoteDecision
from mmsvc.domain.model import KillDecision, RiskTrigger, SymbolState
from mmsvc.domain.risk import stale_reason
from mmsvc.domain.trader import SymbolTrader
from mmsvc.processes.worker.killing import KillSwitch
from mmsvc.processes.worker.main import Worker
from mmsvc.processes.worker.outage import Outage
from tests.unit.processes.worker.stubs import Clock, Store, Venue, book, execution, trader

STALE_MS = 2_000


class StaleStore(Store):
    """The stub store, counting the stale episodes the kill switch records (D7)."""

    def __init__(self) -> None:
        super().__init__()
        self.stale_episodes = 0

    def stale_episode(self, detail: str, position: Decimal, pnl: Decimal) -> None:
        super().stale_episode(detail, position, pnl)
        self.stale_episodes += 1


class Keeper:
    def may_place(self) -> bool:
        return True


class Decisions:
    """The core's decision function, counting its calls."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *args: Any) -> QuoteDecision:
        self.count += 1
        return engine.decide(*args)


@pytest.fixture
def decisions(monkeypatch: pytest.MonkeyPatch) -> Decisions:
    counting = Decisions()
    monkeypatch.setattr(trader_module, "decide", counting)
    return counting


def quoting_worker() -> tuple[Worker, SymbolTrader, Venue, StaleStore, Clock]:
    """An ACTIVE worker whose one-level quote rests at the venue, book stamped 1 ms."""
    t = trader(SymbolState.ACTIVE, market_data_staleness_ms=STALE_MS)
    book(t, seq=1)
    venue, store, clock = Venue(), StaleStore(), Clock(now=10)
    w = Worker.__new__(Worker)
    w.symbol = t.symbol
    w.trader = t
    w.execution = execution(t, venue, store, clock)
    w.kill = KillSwitch(t, store, w.execution, clock_ms=clock)
    w.outage = Outage("PostgreSQL", t.symbol, pull=lambda: None)
    w.keeper = Keeper()  # type: ignore[assignment]
    w.shadow_quotes = None
    w.quiet_inputs = None
    w.last_action_ms = w.last_decision_ms = 0
    w._requote(clock.now)  # places the quote
    assert w.execution.poll() is not None, "the places were answered"
    assert len(venue.placed) == 2
    return w, t, venue, store, clock


def test_a_timer_decision_on_unchanged_inputs_is_skipped(decisions):
    w, _, venue, _, clock = quoting_worker()
    clock.now += 100
    w._requote(clock.now)  # the quote rests as wanted: nothing to do
    decided = decisions.count
    for _ in range(10):
        clock.now += 100
        w._requote(clock.now)
    assert decisions.count == decided, "nothing a decision reads changed"
    assert len(venue.placed) == 2


def test_a_new_book_or_a_state_change_is_decided_again(decisions):
    w, t, _, _, clock = quoting_worker()
    clock.now += 100
    w._requote(clock.now)
    decided = decisions.count
    book(t, bid="99.98", ask="100.02", seq=clock.now)
    clock.now += 100
    w._requote(clock.now)
    assert decisions.count == decided + 1
    clock.now += 100
    w._requote(clock.now)
    assert decisions.count == decided + 1, "quiet again"
    w.kill.fire(KillDecision(RiskTrigger.MANUAL, "drill"), actor="ops")
    clock.now += 100
    w._requote(clock.now)
    assert decisions.count == decided + 2


def test_stale_data_fires_on_the_first_tick_past_the_threshold_while_decisions_are_skipped(
    decisions,
):
    w, t, venue, store, clock = quoting_worker()
    top = t.book.top()
    first_stale = None
    while store.stale_episodes == 0:
        clock.now += 100
        if first_stale is None and stale_reason(top, clock.now, t.config, t.limits) is not None:
            first_stale = clock.now  # where a decision on every tick finds the book stale
        w._requote(clock.now)
        assert clock.now < 10 * STALE_MS, "staleness never fired"
    assert clock.now == first_stale, "not one tick late"
    assert decisions.count < 5, "the quiet ticks in between were skipped"
    assert venue.canceled, "the stale quote was pulled"
