"""Risk guards: pre-trade checks, post-trade breaches, the position limit, reset re-checks.

The rules are the spec's Risk Management section as ARCHITECTURE D5, D7, D9 and
D13 settle them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from decimal import Decimal

from mmsvc.domain.book import TopOfBook
from mmsvc.domain.inventory import Inventory
from mmsvc.domain.model import (
    ZERO,
    Instrument,
    KillDecision,
    MMConfig,
    NewOrder,
    Order,
    Quote,
    RiskTrigger,
    ServiceLimits,
    Side,
)
from mmsvc.domain.requote import KeptOrder, RequoteDiff


def stale_reason(
    top: TopOfBook | None, now_ms: int, config: MMConfig, limits: ServiceLimits
) -> str | None:
    """Why market data is too old to quote on, or None when fresh (D13, D7)."""
    if top is None:
        return "book unknown or one-sided"
    age = now_ms - top.ts_ms
    if age > limits.market_data_staleness_ms:
        return f"book data {age} ms old > MARKET_DATA_STALENESS_THRESHOLD"
    if config.check_staleness and age > config.staleness_threshold_ms:
        return f"book data {age} ms old > staleness_threshold_ms {config.staleness_threshold_ms}"
    return None


def exposure_breach(position_usdt: Decimal, config: MMConfig) -> KillDecision | None:
    """EXPOSURE when |position_usdt| > max_position_usdt (D5)."""
    if abs(position_usdt) > config.max_position_usdt:
        detail = f"|position| {abs(position_usdt)} USDT > max_position_usdt"
        return KillDecision(RiskTrigger.EXPOSURE, f"{detail} {config.max_position_usdt}")
    return None


def loss_breach(total_pnl: Decimal, config: MMConfig) -> KillDecision | None:
    """LOSS when realized + unrealized P&L < -max_loss_usdt (D5)."""
    if total_pnl < -config.max_loss_usdt:
        detail = f"P&L {total_pnl} USDT < -max_loss_usdt {config.max_loss_usdt}"
        return KillDecision(RiskTrigger.LOSS, detail)
    return None


def market_halt(instrument: Instrument) -> KillDecision | None:
    """MARKET_HALT while the exchange has the instrument halted."""
    if instrument.halted:
        return KillDecision(RiskTrigger.MARKET_HALT, f"{instrument.symbol} halted by the exchange")
    return None


def post_trade_breach(
    config: MMConfig, instrument: Instrument, inventory: Inventory, valuation: Decimal | None
) -> KillDecision | None:
    """The first kill-switch condition that holds now: market halt, exposure, then loss."""
    halt = market_halt(instrument)
    if halt is not None or valuation is None:
        return halt
    return exposure_breach(inventory.position_usdt(valuation), config) or loss_breach(
        inventory.total_pnl(valuation), config
    )


def worst_case_fits(quantity: Decimal, price: Decimal, max_position_usdt: Decimal) -> bool:
    """True when a position of quantity valued at price stays within the limit."""
    return abs(quantity) * price <= max_position_usdt


@dataclass(frozen=True, slots=True)
class LimitedQuote:
    """A quote and its requote diff after the position limit removed what could breach it."""

    quote: Quote
    diff: RequoteDiff


def enforce_position_limit(
    quote: Quote,
    diff: RequoteDiff,
    open_orders: Sequence[Order],
    position_qty: Decimal,
    valuation: Decimal,
    max_position_usdt: Decimal,
) -> LimitedQuote:
    """Drop placements, outermost first, until every order on a side filling stays in the limit.

    The worst case of a side (D5) is the position plus every open order not yet
    confirmed canceled plus every placement on that side, valued at the higher of
    the valuation price and the highest order price on that side. When the open
    orders alone already break it, kept orders are canceled outermost first until
    what will remain fits.
    """
    committed = _committed(open_orders, position_qty, valuation)
    if _everything_fits(diff.place, committed, max_position_usdt):
        return LimitedQuote(quote, diff)  # the usual case, decided in one pass
    keep, cancel, place = list(diff.keep), list(diff.cancel), list(diff.place)
    dropped: set[tuple[int, Side]] = set()
    for side, (qty, price) in committed.items():
        sign = 1 if side is Side.BUY else -1
        ours = [p for p in place if p.side is side]
        fitting = _fitting_placements(ours, qty, price, sign, max_position_usdt)
        for p in ours[fitting:]:
            place.remove(p)
            dropped.add((p.level, side))
        if fitting == 0 and not worst_case_fits(qty, price, max_position_usdt):
            for k in _kept_to_cancel(keep, side, position_qty, valuation, max_position_usdt):
                keep.remove(k)
                cancel.append(k.order)
                dropped.add((k.level, side))
    limited = RequoteDiff(tuple(keep), tuple(cancel), tuple(place))
    return LimitedQuote(_without(quote, dropped), limited)


_Exposure = dict[Side, tuple[Decimal, Decimal]]  # side -> (worst-case quantity, price)


def _committed(
    open_orders: Sequence[Order], position_qty: Decimal, valuation: Decimal
) -> _Exposure:
    """Each side's worst case from the position and the open orders alone."""
    buy_qty = sell_qty = position_qty
    buy_price = sell_price = valuation
    for o in open_orders:
        if not o.is_open:
            continue
        if o.side is Side.BUY:
            buy_qty += o.remaining
            buy_price = max(buy_price, o.price)
        else:
            sell_qty -= o.remaining
            sell_price = max(sell_price, o.price)
    return {Side.BUY: (buy_qty, buy_price), Side.SELL: (sell_qty, sell_price)}


def _everything_fits(place: Sequence[NewOrder], committed: _Exposure, max_usdt: Decimal) -> bool:
    """True when both sides stay within the limit with every placement filled."""
    buy_qty, buy_price = committed[Side.BUY]
    sell_qty, sell_price = committed[Side.SELL]
    for p in place:
        if p.side is Side.BUY:
            buy_qty += p.quantity
            buy_price = max(buy_price, p.price)
        else:
            sell_qty -= p.quantity
            sell_price = max(sell_price, p.price)
    return worst_case_fits(buy_qty, buy_price, max_usdt) and worst_case_fits(
        sell_qty, sell_price, max_usdt
    )


def _fitting_placements(
    ours: list[NewOrder], qty: Decimal, price: Decimal, sign: int, max_usdt: Decimal
) -> int:
    """The largest n such that the n innermost placements fit with the committed orders."""
    prefixes = [(qty, price)]
    for p in ours:
        qty += sign * p.quantity
        price = max(price, p.price)
        prefixes.append((qty, price))
    # Dropping outermost first, stop at the first set that fits as a whole.
    for n in range(len(ours), 0, -1):
        if worst_case_fits(*prefixes[n], max_usdt):
            return n
    return 0


def _kept_to_cancel(
    keep: list[KeptOrder],
    side: Side,
    position_qty: Decimal,
    valuation: Decimal,
    max_usdt: Decimal,
) -> list[KeptOrder]:
    """Kept orders of a side to cancel, outermost first, until the rest would fit."""
    sign = 1 if side is Side.BUY else -1
    ours = sorted(
        (k for k in keep if k.order.side is side),
        key=lambda k: k.order.price,
        reverse=side is Side.BUY,  # innermost first: highest bid, lowest ask
    )
    doomed: list[KeptOrder] = []
    while ours:
        qty = position_qty + sign * sum((k.order.remaining for k in ours), ZERO)
        price = max(valuation, *(k.order.price for k in ours))
        if worst_case_fits(qty, price, max_usdt):
            break
        doomed.append(ours.pop())
    return doomed


def _without(quote: Quote, dropped: set[tuple[int, Side]]) -> Quote:
    levels = tuple(
        lv._replace(
            bid=None if (lv.level, Side.BUY) in dropped else lv.bid,
            ask=None if (lv.level, Side.SELL) in dropped else lv.ask,
        )
        for lv in quote.levels
    )
    return replace(quote, levels=levels)


@dataclass(frozen=True, slots=True)
class ResetContext:
    """What a reset re-checks, measured now (ARCHITECTURE D9)."""

    position_usdt: Decimal | None  # None: no valuation price yet
    total_pnl: Decimal | None
    config: MMConfig
    instrument: Instrument | None
    kafka_lag_ms: int | None
    kafka_lag_threshold_ms: int


def reset_refusal(triggers: Iterable[RiskTrigger], ctx: ResetContext) -> str | None:
    """Why a HALTED symbol may not be reset yet, or None when every trigger has cleared."""
    for trigger in triggers:
        reason = _still_holds(trigger, ctx)
        if reason is not None:
            return f"{trigger.value} still holds: {reason}"
    return None


def _still_holds(trigger: RiskTrigger, ctx: ResetContext) -> str | None:
    check = _RESET_CHECKS.get(trigger)
    # REJECT_STORM (its window is cleared on reset), RESPONSE_TIMEOUT, MANUAL and
    # STALE_DATA (which never halts) need nothing (D9).
    return None if check is None else check(ctx)


NO_PRICE = "no price yet"


def _exposure_holds(ctx: ResetContext) -> str | None:
    # D23: facts, not defaults; without a valuation price nothing says the limit holds.
    if ctx.position_usdt is None:
        return NO_PRICE
    breach = exposure_breach(ctx.position_usdt, ctx.config)
    return None if breach is None else breach.detail


def _loss_holds(ctx: ResetContext) -> str | None:
    if ctx.total_pnl is None:
        return NO_PRICE
    breach = loss_breach(ctx.total_pnl, ctx.config)
    return None if breach is None else breach.detail


def _halt_holds(ctx: ResetContext) -> str | None:
    if ctx.instrument is None:
        return "instrument unknown"
    return "instrument still HALTED" if ctx.instrument.halted else None


def _lag_holds(ctx: ResetContext) -> str | None:
    lag = ctx.kafka_lag_ms
    if lag is None:
        return "Kafka lag not measured yet"
    if lag >= ctx.kafka_lag_threshold_ms:
        return f"lag {lag} ms >= threshold {ctx.kafka_lag_threshold_ms} ms"
    return None


_RESET_CHECKS: dict[RiskTrigger, Callable[[ResetContext], str | None]] = {
    RiskTrigger.EXPOSURE: _exposure_holds,
    RiskTrigger.LOSS: _loss_holds,
    RiskTrigger.MARKET_HALT: _halt_holds,
    RiskTrigger.KAFKA_LAG: _lag_holds,
}
