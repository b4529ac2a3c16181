"""The minimal set of cancels and places that turns the resting orders into the new quote."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
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
    bids, asks = _Candidates(), _Candidates()
    for o in sorted(resting, key=_price):
        if o.side is _BUY:
            if top is None or o.price < top.best_ask:
                bids.append(o)
        elif top is None or o.price > top.best_bid:
            asks.append(o)
    keep: list[KeptOrder] = []
    place: list[NewOrder] = []
    for level in quote.levels:
        if level.bid is not None:
            _match(level.level, _BUY, level.bid, bids, price_threshold_bps, keep, place)
        if level.ask is not None:
            _match(level.level, _SELL, level.ask, asks, price_threshold_bps, keep, place)
    if len(keep) == len(resting):
        return RequoteDiff(tuple(keep), (), tuple(place))
    kept = {id(k.order) for k in keep}
    cancel = tuple(o for o in resting if id(o) not in kept)
    return RequoteDiff(tuple(keep), cancel, tuple(place))


_BUY, _SELL = Side.BUY, Side.SELL


def _price(order: Order) -> Decimal:
    return order.price


class _Candidates:
    """Resting orders of one side in price order, so a lookup only visits its neighbours."""

    __slots__ = ("orders", "prices")

    def __init__(self) -> None:
        self.prices: list[Decimal] = []
        self.orders: list[Order] = []

    def append(self, order: Order) -> None:
        self.prices.append(order.price)
        self.orders.append(order)

    def take_closest(self, price: Decimal, quantity: Decimal, tolerance: Decimal) -> Order | None:
        """Remove and return the same-size order closest to price within tolerance."""
        prices, orders = self.prices, self.orders
        low = bisect_left(prices, price - tolerance)
        high = bisect_right(prices, price + tolerance, low)
        best, best_distance = -1, tolerance
        for index in range(low, high):
            if orders[index].remaining == quantity:
                distance = abs(prices[index] - price)
                if best < 0 or distance < best_distance:
                    best, best_distance = index, distance
        if best < 0:
            return None
        del prices[best]
        return orders.pop(best)


def _match(
    level: int,
    side: Side,
    wanted: PriceSize,
    candidates: _Candidates,
    threshold_bps: Decimal,
    keep: list[KeptOrder],
    place: list[NewOrder],
) -> None:
    """Keep the closest same-size candidate within the threshold, else place anew."""
    price, quantity = wanted
    order = candidates.take_closest(price, quantity, price * threshold_bps / BPS)
    if order is None:
        place.append(NewOrder(side, price, quantity, level))
    else:
        keep.append(KeptOrder(order, level))
