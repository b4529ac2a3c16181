"""Position and P&L of one symbol from its fills, and the price it is valued at (D5)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from mmsvc.domain.model import ZERO, Fill, InstrumentKind, MarkPrice, Side


class Inventory:
    """Position, cost and realized P&L; each fill counts once, by event_id.

    The open position's entry cost is kept instead of an average price, so a
    round trip back to flat realizes exactly the sum of its notionals and fees:
    no division is ever rounded into the books except on a partial close.
    """

    __slots__ = ("_cost", "_quantity", "_realized", "_seen", "base_asset", "symbol")

    def __init__(self, symbol: str, base_asset: str) -> None:
        self.symbol = symbol
        self.base_asset = base_asset
        self._quantity = ZERO  # signed: positive is long
        self._cost = ZERO  # signed entry notional of the open position
        self._realized = ZERO
        self._seen: set[str] = set()

    @classmethod
    def from_fills(cls, symbol: str, base_asset: str, fills: Iterable[Fill]) -> Inventory:
        """Rebuild from a fill history: the same result as applying them one by one."""
        inventory = cls(symbol, base_asset)
        for fill in fills:
            inventory.apply(fill)
        return inventory

    @property
    def quantity(self) -> Decimal:
        """Signed position in the base asset; positive is long."""
        return self._quantity

    @property
    def realized_pnl(self) -> Decimal:
        """Realized P&L in the quote asset, fees paid subtracted and rebates added."""
        return self._realized

    @property
    def avg_entry(self) -> Decimal | None:
        """Average entry price of the open position, None when flat."""
        return None if self._quantity == ZERO else self._cost / self._quantity

    def has_seen(self, event_id: str) -> bool:
        """True if the fill with this event_id was already applied."""
        return event_id in self._seen

    def apply(self, fill: Fill) -> bool:
        """Apply a fill once; return False (and change nothing) for a duplicate event_id."""
        if fill.event_id in self._seen:
            return False
        self._seen.add(fill.event_id)
        signed = fill.quantity if fill.side is Side.BUY else -fill.quantity
        if self._quantity == ZERO or (self._quantity > ZERO) == (signed > ZERO):
            self._open(signed, fill.price)
        else:
            self._close(signed, fill.price)
        self._realized -= self.fee_in_quote(fill)
        return True

    def fee_in_quote(self, fill: Fill) -> Decimal:
        """The fill's fee in the quote asset: a base-asset fee is converted at the fill price.

        Fees never change the position quantity (CONTRACTS, engine.event.v1).
        """
        if fill.fee_asset == self.base_asset:
            return fill.fee * fill.price
        return fill.fee

    def unrealized_pnl(self, valuation: Decimal) -> Decimal:
        """What closing the position at the valuation price would realize, before fees."""
        return self._quantity * valuation - self._cost

    def total_pnl(self, valuation: Decimal) -> Decimal:
        """Realized plus unrealized P&L (the loss limit's measure, D5)."""
        return self._realized + self.unrealized_pnl(valuation)

    def position_usdt(self, valuation: Decimal) -> Decimal:
        """Signed position value: quantity x valuation price (D5)."""
        return self._quantity * valuation

    def _open(self, signed: Decimal, price: Decimal) -> None:
        self._quantity += signed
        self._cost += signed * price

    def _close(self, signed: Decimal, price: Decimal) -> None:
        held = abs(self._quantity)
        closing = min(abs(signed), held)
        # Closing all of it removes the whole cost exactly; a part removes its share.
        removed = self._cost if closing == held else self._cost * closing / held
        direction = 1 if self._quantity > ZERO else -1
        self._realized += direction * closing * price - removed
        self._cost -= removed
        self._quantity += closing if signed > ZERO else -closing
        left = abs(signed) - closing
        if left > ZERO:  # the fill flipped the position: the rest opens the other way
            self._open(left if signed > ZERO else -left, price)


def valuation_price(
    kind: InstrumentKind,
    mark: MarkPrice | None,
    last_mid: Decimal | None,
    now_ms: int,
    staleness_ms: int,
) -> Decimal | None:
    """The mark for a perpetual while fresh, else the (last known) mid (ARCHITECTURE D5)."""
    if (
        kind is InstrumentKind.PERPETUAL
        and mark is not None
        and now_ms - mark.ts_ms <= staleness_ms
    ):
        return mark.price
    return last_mid
