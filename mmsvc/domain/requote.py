"""The minimal set of cancels and places that turns the resting orders into the new quote."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from mmsvc.domain.book import TopOfBook
from mmsvc.domain.model import BPS, NewOrder, Order, PriceSize, Quote, Side


@dataclass(frozen=True, slots=True)
class KeptOrder:
    """A resting order kept for a level of the new quote."""

    order: Order
    level: int


@dataclass(frozen=True, slots=True)
class RequoteDiff:
    """Orders to keep (queue priority), to cancel, and to place."""

    keep: tuple[KeptOrder, ...]
    cancel: tuple[Order, ...]
    place: tuple[NewOrder, ...]


def diff_quote(
    quote: Quote,
    open_orders: Sequence[Order],
    price_threshold_bps: Decimal,
    top: TopOfBook | None = None,
) -> RequoteDiff:
    """Keep an order within price_threshold_bps of a wanted level with the same size.

    Every resting order is either kept for exactly one wanted level or canceled;
    every wanted level without a kept order is placed. Orders whose cancel is already
    in flight are left alone. With ``top``, an order that would now cross the market
    is never kept. ``remaining`` is the size compared, since that is what rests.
    """
    bids = [o for o in open_orders if o.is_resting and o.side is Side.BUY]
    asks = [o for o in open_orders if o.is_resting and o.side is Side.SELL]
    if top is not None:
        bids = [o for o in bids if o.price < top.best_ask]
        asks = [o for o in asks if o.price > top.best_bid]
    keep: list[KeptOrder] = []
    place: list[NewOrder] = []
    for level in quote.levels:
        if level.bid is not None:
            _match(level.level, Side.BUY, level.bid, bids, price_threshold_bps, keep, place)
        if level.ask is not None:
            _match(level.level, Side.SELL, level.ask, asks, price_threshold_bps, keep, place)
    kept = {id(k.order) for k in keep}
    cancel = tuple(o for o in open_orders if o.is_resting and id(o) not in kept)
    return RequoteDiff(tuple(keep), cancel, tuple(place))


def _match(
    level: int,
    side: Side,
    wanted: PriceSize,
    candidates: list[Order],
    threshold_bps: Decimal,
    keep: list[KeptOrder],
    place: list[NewOrder],
) -> None:
    """Keep the closest same-size candidate within the threshold, else place anew."""
    tolerance = wanted.price * threshold_bps / BPS
    best, best_distance = -1, tolerance
    for index, order in enumerate(candidates):
        if order.remaining != wanted.quantity:
            continue
        distance = abs(order.price - wanted.price)
        if distance <= tolerance and (best < 0 or distance < best_distance):
            best, best_distance = index, distance
    if best < 0:
        place.append(NewOrder(side, wanted.price, wanted.quantity, level))
    else:
        keep.append(KeptOrder(candidates.pop(best), level))
