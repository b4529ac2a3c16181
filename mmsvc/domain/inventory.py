"""Position and P&L of one symbol from its fills, and the price it is valued at (D5)."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from mmsvc.domain.model import ZERO, Fill, InstrumentKind, MarkPrice, Side


class Inventory:
    """Position and P&L of one symbol; each fill counts once, by event_id.

    Cash, fees and quantity are sums of fills, so total P&L (cash - fees + quantity x
    price) is exact. Only the split into realized and unrealized needs the entry cost
    of the open position, which a partial close divides pro rata.
    """

    __slots__ = ("_cash", "_cost", "_fees", "_quantity", "_seen", "base_asset", "symbol")

    def __init__(self, symbol: str, base_asset: str) -> None:
        self.symbol = symbol
        self.base_asset = base_asset
        self._quantity = ZERO  # signed: positive is long
        self._cash = ZERO  # quote asset received minus paid
        self._fees = ZERO  # quote asset; rebates are negative
        self._cost = ZERO  # signed entry notional of the open position
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
        return self._cash + self._cost - self._fees

    @property
    def fees(self) -> Decimal:
        """Fees paid in the quote asset, net of rebates."""
        return self._fees

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
            self._cost += signed * fill.price
        else:
            self._close(signed, fill.price)
        self._quantity += signed
        self._cash -= signed * fill.price
        self._fees += self.fee_in_quote(fill)
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
        """Realized plus unrealized P&L, exactly (the loss limit's measure, D5)."""
        return self._cash - self._fees + self._quantity * valuation

    def position_usdt(self, valuation: Decimal) -> Decimal:
        """Signed position value: quantity x valuation price (D5)."""
        return self._quantity * valuation

    def _close(self, signed: Decimal, price: Decimal) -> None:
        """Take the closed share out of the entry cost; a flip opens the rest at price."""
        held = abs(self._quantity)
        closing = abs(signed)
        if closing >= held:
            # Flat or flipped: no cost is left but that of the part opened the other way.
            self._cost = (self._quantity + signed) * price
        else:
            self._cost -= self._cost * closing / held


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
