"""Risk guards: staleness, breaches, the worst-case position limit, reset re-checks (D5, D9)."""

from __future__ import annotations

import pytest

from mmsvc.domain.model import (
    InstrumentStatus,
    NewOrder,
    OrderStatus,
    PriceSize,
    Quote,
    QuoteLevel,
    RiskTrigger,
    ServiceLimits,
    Side,
)
from mmsvc.domain.requote import KeptOrder, RequoteDiff
from mmsvc.domain.risk import (
    ResetContext,
    enforce_position_limit,
    exposure_breach,
    loss_breach,
    market_halt,
    reset_refusal,
    stale_reason,
)
from tests.unit.domain.builders import D, config, instrument, order, top

BUY, SELL = Side.BUY, Side.SELL
LIMITS = ServiceLimits(market_data_staleness_ms=5_000)


def test_fresh_book_passes_the_global_staleness_check() -> None:
    assert stale_reason(top(ts_ms=1_000), 6_000, config(), LIMITS) is None


def test_book_older_than_the_global_threshold_is_stale() -> None:
    reason = stale_reason(top(ts_ms=1_000), 6_001, config(), LIMITS)
    assert reason is not None
    assert "MARKET_DATA_STALENESS_THRESHOLD" in reason


def test_per_symbol_threshold_applies_only_when_check_staleness() -> None:
    cfg_off = config(check_staleness=False, staleness_threshold_ms=1_000)
    cfg_on = config(check_staleness=True, staleness_threshold_ms=1_000)
    assert stale_reason(top(ts_ms=1_000), 2_500, cfg_off, LIMITS) is None
    assert "staleness_threshold_ms" in (stale_reason(top(ts_ms=1_000), 2_500, cfg_on, LIMITS) or "")


def test_unknown_book_is_stale() -> None:
    assert stale_reason(None, 0, config(), LIMITS) == "book unknown or one-sided"


def test_exposure_breach_is_strictly_above_the_limit_either_way() -> None:
    cfg = config(max_position_usdt=D(1000))
    assert exposure_breach(D(1000), cfg) is None
    assert exposure_breach(D(-1000), cfg) is None
    breach = exposure_breach(D("-1000.01"), cfg)
    assert breach is not None
    assert breach.trigger is RiskTrigger.EXPOSURE


def test_loss_breach_is_strictly_below_minus_max_loss() -> None:
    cfg = config(max_loss_usdt=D(500))
    assert loss_breach(D(-500), cfg) is None
    breach = loss_breach(D("-500.01"), cfg)
    assert breach is not None
    assert breach.trigger is RiskTrigger.LOSS


def test_exchange_halt_is_a_market_halt() -> None:
    assert market_halt(instrument()) is None
    halt = market_halt(instrument(status=InstrumentStatus.HALTED))
    assert halt is not None
    assert halt.trigger is RiskTrigger.MARKET_HALT


def bids_quote(*prices: str) -> Quote:
    levels = tuple(QuoteLevel(i, PriceSize(D(p), D(1)), None) for i, p in enumerate(prices))
    return Quote("TESTUSDT", D(100), D(20), D(0), levels, 0)


def asks_quote(*prices: str) -> Quote:
    levels = tuple(QuoteLevel(i, None, PriceSize(D(p), D(1))) for i, p in enumerate(prices))
    return Quote("TESTUSDT", D(100), D(20), D(0), levels, 0)


def placements(quote: Quote) -> RequoteDiff:
    new = [
        NewOrder(side, s.price, s.quantity, lv.level)
        for lv in quote.levels
        for side, s in ((BUY, lv.bid), (SELL, lv.ask))
        if s is not None
    ]
    return RequoteDiff((), (), tuple(new))


def test_position_limit_drops_the_outermost_bids_first() -> None:
    # long 5 @ 100 = 500; each bid adds 1 unit valued at 100: 3 bids -> 800 fits 850, 4 -> 900
    wanted = bids_quote("99.9", "99.8", "99.7", "99.6", "99.5")
    out = enforce_position_limit(wanted, placements(wanted), [], D(5), D(100), D(850))
    assert [p.level for p in out.diff.place] == [0, 1, 2]
    assert [lv.bid is not None for lv in out.quote.levels] == [True, True, True, False, False]


def test_position_limit_counts_open_orders_until_their_cancel_is_confirmed() -> None:
    # the canceling bid still counts: 5 + 1 + 2 = 8 -> 800 fits, a third placement -> 900
    going = order(BUY, "99.95", "1", status=OrderStatus.PENDING_CANCEL)
    wanted = bids_quote("99.9", "99.8", "99.7")
    out = enforce_position_limit(wanted, placements(wanted), [going], D(5), D(100), D(850))
    assert [p.level for p in out.diff.place] == [0, 1]


def test_position_limit_values_a_side_at_its_highest_order_price() -> None:
    # short 5 at valuation 100; 4 asks -> 9 x 100.4 = 903.6 fits 1000,
    # 5 asks -> 10 x 100.5 = 1005 breaks it (at the valuation price it would be 1000)
    wanted = asks_quote("100.1", "100.2", "100.3", "100.4", "100.5")
    out = enforce_position_limit(wanted, placements(wanted), [], D(-5), D(100), D(1000))
    assert [p.level for p in out.diff.place] == [0, 1, 2, 3]


def test_orders_that_reduce_the_position_are_kept() -> None:
    # long 9 @ 100 = 900 of 1000: asks only shrink it (8 x 100.1, 7 x 100.2), while
    # bids grow it: one bid makes 10 x 100 = 1000 (fits), two make 1100 (the outer goes)
    wanted = Quote(
        "TESTUSDT",
        D(100),
        D(20),
        D(900),
        (
            QuoteLevel(0, PriceSize(D("99.9"), D(1)), PriceSize(D("100.1"), D(1))),
            QuoteLevel(1, PriceSize(D("99.8"), D(1)), PriceSize(D("100.2"), D(1))),
        ),
        0,
    )
    out = enforce_position_limit(wanted, placements(wanted), [], D(9), D(100), D(1000))
    assert sorted((p.side, p.level) for p in out.diff.place) == [(BUY, 0), (SELL, 0), (SELL, 1)]


def test_kept_orders_are_canceled_outermost_first_when_open_orders_alone_break_the_limit() -> None:
    # long 9 @ 100 with two resting bids: 11 x 100 = 1100 > 1000; canceling 99.8 leaves 1000
    inner, outer = order(BUY, "99.9", "1"), order(BUY, "99.8", "1")
    wanted = bids_quote("99.9", "99.8")
    diff = RequoteDiff((KeptOrder(inner, 0), KeptOrder(outer, 1)), (), ())
    out = enforce_position_limit(wanted, diff, [inner, outer], D(9), D(100), D(1000))
    assert [k.order for k in out.diff.keep] == [inner]
    assert out.diff.cancel == (outer,)
    assert out.quote.levels[1].bid is None
    assert out.quote.levels[0].bid is not None


def test_nothing_is_dropped_when_every_order_fits() -> None:
    wanted = bids_quote("99.9", "99.8")
    diff = placements(wanted)
    out = enforce_position_limit(wanted, diff, [], D(0), D(100), D(10_000))
    assert out.quote is wanted
    assert out.diff is diff


def reset_ctx(**overrides: object) -> ResetContext:
    fields: dict[str, object] = {
        "position_usdt": D(0),
        "total_pnl": D(0),
        "config": config(max_position_usdt=D(1000), max_loss_usdt=D(500)),
        "instrument": instrument(),
        "kafka_lag_ms": 0,
        "kafka_lag_threshold_ms": 10_000,
    }
    fields.update(overrides)
    return ResetContext(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("trigger", "holding", "cleared"),
    [
        (RiskTrigger.EXPOSURE, {"position_usdt": D(1001)}, {"position_usdt": D(999)}),
        (
            RiskTrigger.EXPOSURE,
            {"position_usdt": D(1500)},
            {"position_usdt": D(1500), "config": config(max_position_usdt=D(2000))},
        ),
        (RiskTrigger.LOSS, {"total_pnl": D(-501)}, {"total_pnl": D(-499)}),
        (
            RiskTrigger.LOSS,
            {"total_pnl": D(-600)},
            {"total_pnl": D(-600), "config": config(max_loss_usdt=D(1000))},
        ),
        (
            RiskTrigger.MARKET_HALT,
            {"instrument": instrument(status=InstrumentStatus.HALTED)},
            {"instrument": instrument()},
        ),
        (RiskTrigger.MARKET_HALT, {"instrument": None}, {}),
        (RiskTrigger.KAFKA_LAG, {"kafka_lag_ms": 10_000}, {"kafka_lag_ms": 9_999}),
        (RiskTrigger.KAFKA_LAG, {"kafka_lag_ms": None}, {}),
    ],
)
def test_reset_refused_while_the_trigger_holds_and_allowed_once_it_clears(
    trigger: RiskTrigger, holding: dict[str, object], cleared: dict[str, object]
) -> None:
    refusal = reset_refusal([trigger], reset_ctx(**holding))
    assert refusal is not None
    assert refusal.startswith(trigger.value)
    assert reset_refusal([trigger], reset_ctx(**cleared)) is None


@pytest.mark.parametrize(
    "trigger",
    [RiskTrigger.REJECT_STORM, RiskTrigger.RESPONSE_TIMEOUT, RiskTrigger.MANUAL],
)
def test_reset_needs_nothing_for_storms_timeouts_and_manual_kills(trigger: RiskTrigger) -> None:
    bad = reset_ctx(position_usdt=D(5000), total_pnl=D(-5000), kafka_lag_ms=99_999)
    assert reset_refusal([trigger], bad) is None


def test_reset_rechecks_every_active_trigger() -> None:
    ctx = reset_ctx(position_usdt=D(0), total_pnl=D(-600))
    refusal = reset_refusal([RiskTrigger.EXPOSURE, RiskTrigger.LOSS], ctx)
    assert refusal is not None
    assert refusal.startswith("LOSS")


def test_limits_default_to_the_spec() -> None:
    limits = ServiceLimits()
    assert (limits.market_data_staleness_ms, limits.reject_storm_count) == (5_000, 5)
    assert (limits.reject_storm_window_ms, limits.kafka_lag_threshold_ms) == (60_000, 10_000)
    assert (limits.response_timeout_ms, limits.max_orders_per_second) == (50, 10)
