"""The minimal set of cancels and places that turns the resting orders into the new quote."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import NamedTuple

from mmsvc.domain.book import TopOfBook
from mmsvc.domain.model import BPS, NewOrder, Order, PriceSize, Quote, Side


class KeptOrder(NamedTuple):
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
    resting = [o for o in open_orders if o.is_resting]
    bids = sorted(
        (o for o in resting if o.side is _BUY and (top is None or o.price < top.best_ask)),
        key=_price,
    )
    asks = sorted(
        (o for o in resting if o.side is _SELL and (top is None or o.price > top.best_bid)),
        key=_price,
    )
    factor = price_threshold_bps / BPS
    keep: list[KeptOrder] = []
    place: list[NewOrder] = []
    for level, bid, ask in quote.levels:
        if bid is not None:
            order = _take_closest(bids, bid, factor)
            if order is None:
                place.append(NewOrder(_BUY, bid.price, bid.quantity, level))
            else:
                keep.append(KeptOrder(order, level))
        if ask is not None:
            order = _take_closest(asks, ask, factor)
            if order is None:
                place.append(NewOrder(_SELL, ask.price, ask.quantity, level))
            else:
                keep.append(KeptOrder(order, level))
    if len(keep) == len(resting):
        return RequoteDiff(tuple(keep), (), tuple(place))
    kept = {id(k.order) for k in keep}
    cancel = tuple(o for o in resting if id(o) not in kept)
    return RequoteDiff(tuple(keep), cancel, tuple(place))


_BUY, _SELL = Side.BUY, Side.SELL


def _price(order: Order) -> Decimal:
    return order.price


def _take_closest(candidates: list[Order], wanted: PriceSize, factor: Decimal) -> Order | None:
    """Remove and return the same-size order closest to the wanted price within tolerance.

    ``candidates`` are in price order, so the scan stops past the tolerance band.
    """
    price, quantity = wanted
    tolerance = price * factor
    best, best_distance = -1, tolerance
    for index, order in enumerate(candidates):
        distance = order.price - price
        if distance > tolerance:
            break
        if order.remaining == quantity and -tolerance <= distance:
            distance = abs(distance)
            if best < 0 or distance < best_distance:
                best, best_distance = index, distance
    return None if best < 0 else candidates.pop(best)
