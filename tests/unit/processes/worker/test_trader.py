"""SymbolTrader: halts never dropped, holds after fills and crosses (D23, D31)."""

from __future__ import annotations

from dataclasses import replace

from mmsvc.domain.model import InstrumentStatus, Side, SymbolState
from tests.unit.domain.builders import instrument
from tests.unit.processes.worker.stubs import book, buy, inventory_long, trader


def test_a_halt_stamped_before_the_metadata_answer_still_halts() -> None:
    """Scenario 6: the halt came during the Metadata round trip (no `_superseded` drop)."""
    t = trader(SymbolState.ACTIVE)  # the Metadata answer: TRADING, as of 0
    t.on_instrument(instrument(), 1_000)
    t.exchange_halt(900)
    assert t.instrument is not None
    assert t.instrument.halted


def test_an_update_or_a_metadata_answer_of_trading_never_clears_a_halt() -> None:
    t = trader()
    t.exchange_halt(1_000)
    t.on_instrument(instrument(status=InstrumentStatus.TRADING), 2_000)
    assert t.instrument is not None
    assert t.instrument.halted


def test_only_a_resume_newer_than_the_last_halt_clears_it() -> None:
    t = trader()
    t.exchange_halt(1_000)
    t.exchange_resume(999)
    assert t.instrument is not None
    assert t.instrument.halted
    t.exchange_resume(1_001)
    assert t.instrument is not None
    assert not t.instrument.halted
    t.exchange_halt(1_500)
    assert t.instrument.halted if t.instrument else False


def test_a_metadata_answer_of_halted_halts_until_a_newer_resume() -> None:
    t = trader()
    t.on_instrument(replace(instrument(), status=InstrumentStatus.HALTED), 5_000)
    t.exchange_resume(4_000)  # history older than the answer
    assert t.instrument is not None
    assert t.instrument.halted
    t.exchange_resume(6_000)
    assert t.instrument is not None
    assert not t.instrument.halted


def test_a_cross_holds_its_side_until_a_newer_book_message() -> None:
    """Scenario 9 / D23: the venue's book is ahead of ours on that side."""
    t = trader()
    book(t, seq=1)
    t.holds.after_cross(Side.BUY)
    sell = buy()._replace(side=Side.SELL, price=buy().price + 2)
    allowed, held = t.holds.allowed((buy(), sell), 1, 10)
    assert held
    assert allowed == (sell,)
    book(t, seq=2)
    allowed, held = t.holds.allowed((buy(), sell), 2, 11)
    assert not held
    assert allowed == (buy(), sell)


def test_a_fill_holds_both_sides_until_the_book_catches_up_or_the_wait_ends() -> None:
    t = trader()
    t.holds.after_fill(fill_ts_ms=500, now_ms=1_000)
    assert t.holds.held_sides(book_ts_ms=400, now_ms=1_100) == {Side.BUY, Side.SELL}
    assert t.holds.held_sides(book_ts_ms=500, now_ms=1_100) == set()
    assert t.holds.held_sides(book_ts_ms=400, now_ms=2_000) == set()


def test_a_flat_position_needs_no_price_and_a_long_one_does() -> None:
    t = trader()
    assert t.position_and_pnl(0)[0] == 0
    t.inventory = inventory_long("1")
    assert t.position_and_pnl(0) == (None, None)


def test_a_halt_older_than_the_metadata_trading_answer_halts_but_is_history() -> None:
    """A new group replays md.instrument.* from the start (D15): an old halt is history.

    Still halted until a newer resume (D31, in doubt halted), so nothing is quoted;
    but the decision pulls quotes without latching a MARKET_HALT kill.
    """
    t = trader(SymbolState.ACTIVE)
    t.on_instrument(instrument(), 5_000, from_metadata=True)  # asked at 5000: TRADING
    t.exchange_halt(1_000)  # replayed history, its resume still on its way
    assert t.instrument is not None
    assert t.instrument.halted
    assert t.halt_is_history
    book(t)
    decision = t.decide(6_000)
    assert decision is not None
    assert decision.kill is None
    assert decision.place == ()
    t.exchange_resume(1_100)
    assert not t.halt_is_history
    assert t.instrument is not None
    assert not t.instrument.halted


def test_a_halt_newer_than_the_metadata_answer_kills_an_active_symbol() -> None:
    t = trader(SymbolState.ACTIVE)
    t.on_instrument(instrument(), 5_000, from_metadata=True)
    t.exchange_halt(5_001)  # stamped after the question: news, not history
    assert not t.halt_is_history
    book(t)
    decision = t.decide(6_000)
    assert decision is not None
    assert decision.kill is not None
    assert decision.kill.trigger.value == "MARKET_HALT"


def test_a_halt_and_a_resume_of_the_same_millisecond_are_ordered_by_their_send_time() -> None:
    """An exchange can halt and resume within a millisecond; a new group's replay brings
    the two topics in any order. Before, such a pair kept every later worker halted for
    good (a resume had to be stamped strictly after its halt)."""
    for arrival in ("halt first", "resume first"):
        t = trader(SymbolState.ACTIVE)
        t.on_instrument(instrument(), 500)
        if arrival == "halt first":
            t.exchange_halt(1_000, sent_ms=1_020)
            t.exchange_resume(1_000, sent_ms=1_021)
        else:
            t.exchange_resume(1_000, sent_ms=1_021)
            t.exchange_halt(1_000, sent_ms=1_020)
        assert t.instrument is not None
        assert not t.instrument.halted, arrival


def test_a_halt_and_a_resume_alike_in_every_stamp_leave_it_halted() -> None:
    t = trader(SymbolState.ACTIVE)
    t.on_instrument(instrument(), 500)
    t.exchange_halt(1_000, sent_ms=1_020)
    t.exchange_resume(1_000, sent_ms=1_020)
    assert t.instrument is not None
    assert t.instrument.halted  # in doubt, halted (D23)
