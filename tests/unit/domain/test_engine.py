"""One quoting decision: states, kill switches, stale data, and the limit on what may fill."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from mmsvc.domain.book import TopOfBook
from mmsvc.domain.engine import MarketInputs, QuoteDecision, decide
from mmsvc.domain.inventory import Inventory
from mmsvc.domain.model import (
    Instrument,
    InstrumentStatus,
    MMConfig,
    NewOrder,
    Order,
    OrderStatus,
    RiskTrigger,
    ServiceLimits,
    Side,
    SymbolState,
)
from mmsvc.domain.quoting import compute_quote
from mmsvc.domain.state import Command, activate
from tests.unit.domain.builders import D, config, fill, instrument, order, top
from tests.unit.domain.strategies import configs, instruments, multipliers, tops

BUY, SELL = Side.BUY, Side.SELL
ACTIVE, PAUSED, HALTED = SymbolState.ACTIVE, SymbolState.PAUSED, SymbolState.HALTED
LIMITS = ServiceLimits()
NOW = 1_500
VALUATION = D(100)


def run(
    *,
    state: SymbolState = ACTIVE,
    cfg: MMConfig | None = None,
    inventory: Inventory | None = None,
    open_orders: list[Order] | None = None,
    book_ts: int = 1_000,
    valuation: Decimal | None = VALUATION,
    **inst: object,
) -> QuoteDecision:
    market = MarketInputs(top(ts_ms=book_ts), valuation, D(1))
    inv = inventory or Inventory("TESTUSDT", "TEST")
    return decide(
        cfg or config(), instrument(**inst), market, inv, open_orders or [], state, LIMITS, NOW
    )


def test_active_symbol_with_nothing_resting_places_both_sides() -> None:
    decision = run()
    assert decision.kill is None
    assert decision.pulled is None
    assert decision.place == (
        NewOrder(BUY, D("99.90"), D("1.001"), 0),
        NewOrder(SELL, D("100.10"), D("0.999"), 0),
    )


def test_resting_orders_near_the_quote_are_kept_and_others_replaced() -> None:
    near, far = order(BUY, "99.89", "1.001"), order(SELL, "100.30", "0.999")
    decision = run(open_orders=[near, far])
    assert [k.order for k in decision.keep] == [near]
    assert decision.cancel == (far,)
    assert decision.place == (NewOrder(SELL, D("100.10"), D("0.999"), 0),)


def test_paused_symbol_cancels_everything_and_places_nothing() -> None:
    resting = order(BUY, "99.90", "1")
    decision = run(state=PAUSED, open_orders=[resting])
    assert decision.cancel == (resting,)
    assert decision.place == ()
    assert decision.quote is None
    assert decision.kill is None
    assert decision.pulled == "symbol PAUSED"


def test_halted_symbol_only_cancels_even_when_a_breach_holds() -> None:
    long_inv = Inventory.from_fills("TESTUSDT", "TEST", [fill(BUY, "100", "500")])
    resting = order(BUY, "99.90", "1")
    decision = run(state=HALTED, inventory=long_inv, open_orders=[resting])
    assert decision.cancel == (resting,)
    assert decision.place == ()
    assert decision.kill is None


def test_exposure_breach_fires_the_kill_switch_and_cancels_everything() -> None:
    # 101 units at 100 = 10100 USDT > 10000
    inv = Inventory.from_fills("TESTUSDT", "TEST", [fill(BUY, "100", "101")])
    resting = order(SELL, "100.10", "1")
    decision = run(inventory=inv, open_orders=[resting])
    assert decision.kill is not None
    assert decision.kill.trigger is RiskTrigger.EXPOSURE
    assert decision.cancel == (resting,)
    assert decision.place == ()


def test_rising_price_alone_can_breach_exposure() -> None:
    inv = Inventory.from_fills("TESTUSDT", "TEST", [fill(BUY, "100", "99")])
    assert run(inventory=inv, valuation=D(101)).kill is None  # 9999
    kill = run(inventory=inv, valuation=D(102)).kill
    assert kill is not None
    assert kill.trigger is RiskTrigger.EXPOSURE


def test_loss_breach_fires_the_kill_switch_while_paused_too() -> None:
    # bought 10 @ 160, valued at 100: unrealized -600 < -500
    inv = Inventory.from_fills("TESTUSDT", "TEST", [fill(BUY, "160", "10")])
    decision = run(state=PAUSED, inventory=inv)
    assert decision.kill is not None
    assert decision.kill.trigger is RiskTrigger.LOSS


def test_exchange_halt_fires_market_halt() -> None:
    decision = run(status=InstrumentStatus.HALTED)
    assert decision.kill is not None
    assert decision.kill.trigger is RiskTrigger.MARKET_HALT
    assert decision.place == ()


def test_stale_book_pulls_quotes_without_a_kill() -> None:
    resting = order(BUY, "99.90", "1.001")
    decision = run(book_ts=NOW - 5_001, open_orders=[resting])
    assert decision.stale
    assert decision.kill is None
    assert decision.cancel == (resting,)
    assert decision.place == ()
    assert (decision.pulled or "").startswith("STALE_DATA")


def test_per_symbol_staleness_applies_when_enabled() -> None:
    strict = config(check_staleness=True, staleness_threshold_ms=200)
    assert run(cfg=strict, book_ts=NOW - 201).stale
    assert not run(cfg=strict, book_ts=NOW - 200).stale


def test_unknown_book_pulls_quotes() -> None:
    market = MarketInputs(None, D(100), D(1))
    inv = Inventory("TESTUSDT", "TEST")
    decision = decide(config(), instrument(), market, inv, [], ACTIVE, LIMITS, NOW)
    assert decision.stale
    assert decision.place == ()


def test_pending_cancel_orders_are_not_canceled_twice() -> None:
    going = order(BUY, "99.00", "1", status=OrderStatus.PENDING_CANCEL)
    assert run(state=PAUSED, open_orders=[going]).cancel == ()


# --- properties over random books, configs, grids, positions and resting orders ---


Situation = tuple[MMConfig, Instrument, TopOfBook, Decimal, Decimal, list[Order], Decimal]


@st.composite
def situations(draw: st.DrawFn) -> Situation:
    cfg = draw(configs())
    inst = draw(instruments())
    book = draw(tops(inst.tick_size))
    mid = book.mid
    valuation = mid * draw(st.decimals(D("0.97"), D("1.03"), places=3))
    limit_units = cfg.max_position_usdt / valuation
    position = (limit_units * draw(st.decimals(D(-1), D(1), places=3))).quantize(inst.lot_size)
    resting = draw(st.lists(resting_orders(mid, inst.tick_size, inst.lot_size, cfg), max_size=6))
    return cfg, inst, book, valuation, position, resting, draw(multipliers())


@st.composite
def resting_orders(
    draw: st.DrawFn, mid: Decimal, tick: Decimal, lot: Decimal, cfg: MMConfig
) -> Order:
    side = draw(st.sampled_from([BUY, SELL]))
    offset = draw(st.integers(1, 200)) * tick
    price = mid - offset if side is BUY else mid + offset
    price = max(price, tick)
    size = max(lot, (cfg.order_size_usdt / price).quantize(lot))
    status = draw(st.sampled_from([OrderStatus.NEW, OrderStatus.PENDING_CANCEL]))
    return order(side, price.quantize(tick), size, status=status)


def inventory_of(position: Decimal, price: Decimal) -> Inventory:
    inv = Inventory("PROPUSDT", "PROP")
    if position:
        inv.apply(fill(BUY if position > 0 else SELL, price, abs(position)))
    return inv


def worst_case(
    side: Side, position: Decimal, valuation: Decimal, orders: list[tuple[Decimal, Decimal]]
) -> Decimal:
    """|position + every order of the side filling| at the highest of its prices (D5)."""
    sign = 1 if side is BUY else -1
    qty = position + sign * sum((q for _, q in orders), D(0))
    price = max([valuation, *(p for p, _ in orders)])
    return abs(qty) * price


def decide_situation(s: Situation) -> tuple[QuoteDecision, Inventory]:
    cfg, inst, book, valuation, position, resting, vol = s
    inv = inventory_of(position, valuation)
    market = MarketInputs(book, valuation, vol)
    return decide(cfg, inst, market, inv, resting, ACTIVE, LIMITS, book.ts_ms), inv


@given(situations())
def test_no_set_of_proposed_orders_can_break_the_position_limit_if_all_fill(s: Situation) -> None:
    cfg, _, _, valuation, position, resting, _ = s
    decision, _ = decide_situation(s)
    for side in (BUY, SELL):
        placed = [(p.price, p.quantity) for p in decision.place if p.side is side]
        if not placed:
            continue
        committed = [(o.price, o.remaining) for o in resting if o.is_open and o.side is side]
        assert worst_case(side, position, valuation, committed + placed) <= cfg.max_position_usdt


@given(situations())
def test_quote_is_not_empty_whenever_the_limits_allow_an_order(s: Situation) -> None:
    """D21: a side's first level is missing only when one more order would break the limit."""
    cfg, inst, book, valuation, position, resting, vol = s
    decision, inv = decide_situation(s)
    if decision.kill is not None:
        return
    assert decision.quote is not None
    wanted = compute_quote(cfg, inst, book, inv.position_usdt(valuation), vol, book.ts_ms)
    for side in (BUY, SELL):
        want = wanted.levels[0].bid if side is BUY else wanted.levels[0].ask
        got = decision.quote.levels[0].bid if side is BUY else decision.quote.levels[0].ask
        if want is None or got is not None:
            continue
        committed = [(o.price, o.remaining) for o in resting if o.is_open and o.side is side]
        one_more = [*committed, (want.price, want.quantity)]
        assert worst_case(side, position, valuation, one_more) > cfg.max_position_usdt


@given(situations())
def test_decision_orders_are_consistent_with_the_quote(s: Situation) -> None:
    _, _, book, _, _, resting, _ = s
    decision, _ = decide_situation(s)
    if decision.quote is None:
        return
    wanted = {
        (side, lv.level, ps.price, ps.quantity)
        for lv in decision.quote.levels
        for side, ps in ((BUY, lv.bid), (SELL, lv.ask))
        if ps is not None
    }
    for p in decision.place:
        assert (p.side, p.level, p.price, p.quantity) in wanted
        assert p.price < book.best_ask if p.side is BUY else p.price > book.best_bid
    served = {(p.side, p.level) for p in decision.place} | {
        (k.order.side, k.level) for k in decision.keep
    }
    assert served == {(side, level) for side, level, _, _ in wanted}
    resting_ids = {id(o) for o in resting if o.is_resting}
    assert {id(k.order) for k in decision.keep} | {id(o) for o in decision.cancel} == resting_ids


def test_a_paused_symbol_is_not_killed_by_an_exchange_halt_and_cannot_be_enabled() -> None:
    """A halt replayed from history before its resume (another topic) latches nothing (D23)."""
    decision = run(state=PAUSED, status=InstrumentStatus.HALTED)
    assert decision.kill is None
    refused = activate(PAUSED, Command.ENABLE, global_kill=False, instrument_halted=True)
    assert not refused.allowed
    assert "HALTED by the exchange" in refused.reason
