"""Inventory: position, average entry, realized and unrealized P&L, fees, valuation (D5)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from mmsvc.domain.inventory import Inventory, valuation_price
from mmsvc.domain.model import Fill, InstrumentKind, MarkPrice, Side
from tests.unit.domain.builders import D, fill

BUY, SELL = Side.BUY, Side.SELL


def inventory(*fills: Fill) -> Inventory:
    return Inventory.from_fills("BTCUSDT", "BTC", fills)


def test_buys_average_their_entry_price() -> None:
    # 1 @ 100 and 3 @ 104: entry = (100 + 312) / 4 = 103
    inv = inventory(fill(BUY, "100", "1"), fill(BUY, "104", "3"))
    assert (inv.quantity, inv.avg_entry, inv.realized_pnl) == (D(4), D(103), D(0))


def test_selling_part_of_a_long_realizes_against_the_average_entry() -> None:
    # long 4 @ 103, sell 1 @ 110: realized = 1 x (110 - 103) = 7; 3 left at 103
    inv = inventory(fill(BUY, "100", "1"), fill(BUY, "104", "3"), fill(SELL, "110", "1"))
    assert (inv.quantity, inv.avg_entry, inv.realized_pnl) == (D(3), D(103), D(7))


def test_unrealized_pnl_and_position_usdt_use_the_valuation_price() -> None:
    inv = inventory(fill(BUY, "100", "2"))
    assert inv.unrealized_pnl(D(95)) == D(-10)
    assert inv.position_usdt(D(95)) == D(190)
    assert inv.total_pnl(D(95)) == D(-10)


def test_short_profits_when_the_price_falls() -> None:
    # short 2 @ 100, buy back 2 @ 90: realized = 2 x (100 - 90) = 20
    inv = inventory(fill(SELL, "100", "2"))
    assert inv.quantity == D(-2)
    assert inv.position_usdt(D(90)) == D(-180)
    assert inv.unrealized_pnl(D(90)) == D(20)
    inv.apply(fill(BUY, "90", "2"))
    assert (inv.quantity, inv.avg_entry, inv.realized_pnl) == (D(0), None, D(20))


def test_a_fill_through_zero_flips_long_to_short_at_the_fill_price() -> None:
    # long 1 @ 100, sell 3 @ 105: realize 1 x 5 = 5, then short 2 @ 105
    inv = inventory(fill(BUY, "100", "1"), fill(SELL, "105", "3"))
    assert (inv.quantity, inv.avg_entry, inv.realized_pnl) == (D(-2), D(105), D(5))
    # buy 3 @ 101: realize 2 x (105 - 101) = 8 more, then long 1 @ 101
    inv.apply(fill(BUY, "101", "3"))
    assert (inv.quantity, inv.avg_entry, inv.realized_pnl) == (D(1), D(101), D(13))


def test_quote_asset_fee_is_subtracted_and_a_rebate_adds_to_pnl() -> None:
    inv = inventory(fill(BUY, "100", "1", fee="0.1"), fill(SELL, "101", "1", fee="-0.02"))
    # 1 - 0.1 + 0.02
    assert inv.realized_pnl == D("0.92")


def test_base_asset_fee_is_converted_at_the_fill_price_and_keeps_the_quantity() -> None:
    # 0.001 BTC at 65000 = 65 USDT
    inv = inventory(fill(BUY, "65000", "1", fee="0.001", fee_asset="BTC"))
    assert inv.realized_pnl == D(-65)
    assert inv.quantity == D(1)


def test_a_fill_is_applied_once_by_event_id() -> None:
    inv = inventory(fill(BUY, "100", "1", event_id="e-1"))
    assert not inv.apply(fill(BUY, "100", "1", event_id="e-1"))
    assert inv.quantity == D(1)
    assert inv.has_seen("e-1")


def test_round_trip_realizes_exactly_even_with_thirds() -> None:
    # buy 3 @ 100 then 1 @ 101 (entry 100.25), sell in three awkward parts: exactly flat
    inv = inventory(
        fill(BUY, "100", "3"),
        fill(BUY, "101", "1"),
        fill(SELL, "102", "1.3"),
        fill(SELL, "99", "0.7"),
        fill(SELL, "100.5", "2"),
    )
    # cash: -300 - 101 + 132.6 + 69.3 + 201 = 1.9
    assert inv.quantity == 0
    assert inv.realized_pnl == D("1.9")


def test_perpetual_is_valued_at_its_fresh_mark() -> None:
    mark = MarkPrice(D("100.5"), ts_ms=1_000)
    assert valuation_price(InstrumentKind.PERPETUAL, mark, D(100), 5_000, 5_000) == D("100.5")


def test_perpetual_falls_back_to_mid_when_its_mark_is_stale() -> None:
    mark = MarkPrice(D("100.5"), ts_ms=1_000)
    assert valuation_price(InstrumentKind.PERPETUAL, mark, D(100), 6_001, 5_000) == D(100)


def test_spot_is_valued_at_the_mid_even_with_a_mark() -> None:
    mark = MarkPrice(D("100.5"), ts_ms=1_000)
    assert valuation_price(InstrumentKind.SPOT, mark, D(100), 1_000, 5_000) == D(100)
    assert valuation_price(InstrumentKind.SPOT, None, None, 1_000, 5_000) is None


fills = st.lists(
    st.builds(
        lambda side, price, qty, fee, base_fee, eid: fill(
            side,
            D(price) / 100,
            D(qty) / 1000,
            fee=D(fee) / 1000,
            fee_asset="BTC" if base_fee else "USDT",
            event_id=f"e{eid}",
        ),
        st.sampled_from([BUY, SELL]),
        st.integers(1, 10_000_000),
        st.integers(1, 100_000),
        st.integers(-500, 500),
        st.booleans(),
        st.integers(0, 30),
    ),
    max_size=40,
)


@given(fills, st.integers(1, 10_000_000).map(lambda n: D(n) / 100))
def test_rebuild_equals_incremental_and_cash_flow_accounting(
    history: list[Fill], valuation: Decimal
) -> None:
    live = Inventory("BTCUSDT", "BTC")
    for f in history:
        live.apply(f)
        live.apply(f)  # a redelivery changes nothing
    rebuilt = Inventory.from_fills("BTCUSDT", "BTC", history)
    assert (rebuilt.quantity, rebuilt.realized_pnl, rebuilt.avg_entry) == (
        live.quantity,
        live.realized_pnl,
        live.avg_entry,
    )
    # An independent ledger: P&L = cash received - cash paid - fees + position x price.
    first: dict[str, Fill] = {}
    for f in history:
        first.setdefault(f.event_id, f)
    counted = list(first.values())
    signed = sum((f.quantity if f.side is BUY else -f.quantity for f in counted), D(0))
    cash = sum((f.price * (f.quantity if f.side is SELL else -f.quantity) for f in counted), D(0))
    fees = sum((f.fee * (f.price if f.fee_asset == "BTC" else 1) for f in counted), D(0))
    assert live.quantity == signed
    assert live.total_pnl(valuation) == cash - fees + signed * valuation
