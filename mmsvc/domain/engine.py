"""One quoting decision of a worker: what to cancel, what to place, and whether to kill.

This composes the pure pieces in the order the spec's Market Making Flow gives:
post-trade checks, pre-trade checks, the formula, the requote diff, the position
limit. The runtime calls :func:`decide` on every quote tick and acts on the answer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from mmsvc.domain.book import TopOfBook
from mmsvc.domain.inventory import Inventory
from mmsvc.domain.model import (
    Instrument,
    KillDecision,
    MMConfig,
    NewOrder,
    Order,
    Quote,
    RiskTrigger,
    ServiceLimits,
    SymbolState,
)
from mmsvc.domain.quoting import compute_quote
from mmsvc.domain.requote import KeptOrder, diff_quote
from mmsvc.domain.risk import enforce_position_limit, post_trade_breach, stale_reason


@dataclass(frozen=True, slots=True)
class QuoteDecision:
    """What to do now. With ``kill`` set the symbol must go HALTED; ``cancel`` is always safe.

    ``pulled`` says why no quote was made (state, stale data, a kill); ``stale`` is
    set when the cause is STALE_DATA, which pulls quotes but halts nothing (D7).
    ``cancel`` may hold a PENDING order with no order_id yet: cancel it once it is
    acknowledged (D10). ``place`` is innermost level first, so a rate limiter that
    defers the tail defers the outer levels.
    """

    quote: Quote | None
    keep: tuple[KeptOrder, ...]
    cancel: tuple[Order, ...]
    place: tuple[NewOrder, ...]
    kill: KillDecision | None = None
    pulled: str | None = None
    stale: bool = False


@dataclass(frozen=True, slots=True)
class MarketInputs:
    """What the worker knows of the market at this tick."""

    top: TopOfBook | None
    valuation: Decimal | None  # inventory.valuation_price: mark or (last known) mid (D5)
    vol_multiplier: Decimal
    # The exchange's halt predates a Metadata answer of TRADING: history replayed
    # (a new group reads md.instrument.* from the start, D15) whose resume is on
    # its way on another topic. Quotes are pulled until it comes; no kill latches.
    halt_is_history: bool = False


def decide(
    config: MMConfig,
    instrument: Instrument,
    market: MarketInputs,
    inventory: Inventory,
    open_orders: Sequence[Order],
    state: SymbolState,
    limits: ServiceLimits,
    now_ms: int,
) -> QuoteDecision:
    """Decide one tick: never a placement unless ACTIVE, fresh, within every limit."""
    if state is SymbolState.HALTED:
        return _pull(open_orders, "symbol HALTED")  # D6: cancels only
    valuation = market.valuation
    # Breaches fire while PAUSED too: a price move or a lowered limit breaches a
    # position whether or not we are quoting (D5).
    kill = post_trade_breach(config, instrument, inventory, valuation)
    if (
        kill is not None
        and kill.trigger is RiskTrigger.MARKET_HALT
        and (state is not SymbolState.ACTIVE or market.halt_is_history)
    ):
        # In doubt, halted (D23): nothing is quoted while the exchange has the
        # instrument halted. But a PAUSED symbol trades nothing (and enable is
        # refused while halted: state.activate), and a halt older than the
        # Metadata Service's TRADING answer is history replayed before its resume:
        # neither is news that should latch a kill at start-up (D15, D23, D31).
        return _pull(open_orders, f"instrument halted by the exchange ({kill.detail})")
    if kill is not None:
        return _pull(open_orders, f"{kill.trigger.value}: {kill.detail}", kill=kill)
    if state is not SymbolState.ACTIVE:
        return _pull(open_orders, f"symbol {state.value}")
    top = market.top
    reason = stale_reason(top, now_ms, config, limits)
    if reason is None and valuation is None:
        reason = "no price to value the position at"
    if reason is not None or top is None or valuation is None:
        return _pull(open_orders, f"{RiskTrigger.STALE_DATA.value}: {reason}", stale=True)
    return _quote(config, instrument, market, top, inventory, open_orders, valuation, now_ms)


def _quote(
    config: MMConfig,
    instrument: Instrument,
    market: MarketInputs,
    top: TopOfBook,
    inventory: Inventory,
    open_orders: Sequence[Order],
    valuation: Decimal,
    now_ms: int,
) -> QuoteDecision:
    position_usdt = inventory.position_usdt(valuation)
    wanted = compute_quote(config, instrument, top, position_usdt, market.vol_multiplier, now_ms)
    diff = diff_quote(wanted, open_orders, config.price_threshold_bps, top)
    limited = enforce_position_limit(
        wanted, diff, open_orders, inventory.quantity, valuation, config.max_position_usdt
    )
    d = limited.diff
    return QuoteDecision(limited.quote, d.keep, d.cancel, d.place)


def _pull(
    open_orders: Sequence[Order],
    reason: str,
    *,
    kill: KillDecision | None = None,
    stale: bool = False,
) -> QuoteDecision:
    """Cancel every resting order and place nothing."""
    cancel = tuple(o for o in open_orders if o.is_resting)
    return QuoteDecision(None, (), cancel, (), kill=kill, pulled=reason, stale=stale)
