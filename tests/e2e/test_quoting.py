"""A symbol enabled over the control channel quotes both sides at the formula's prices."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mmsvc.domain.state import Command
from tests.e2e.conftest import ServiceFactory, add_config
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]


def test_enabled_symbol_quotes_both_sides_and_starts_paused(
    service_factory: ServiceFactory,
) -> None:
    service = service_factory()
    add_config(service.sessions, "BTCUSDT", base_spread_bps=20, num_levels=2, level_spacing_bps=10)
    service.start("supervisor")
    service.start("outbox")
    service.wait_ready(["BTCUSDT"])
    assert service.state_name("BTCUSDT") == "PAUSED"  # never auto-starts
    assert service.open_orders("BTCUSDT") == []

    status, body = service.command(Command.ENABLE, "BTCUSDT")
    assert (status, body["state"]) == (200, "ACTIVE")

    # One listing, polled: two reads could straddle a requote.
    orders = wait_for(lambda: service.quotes("BTCUSDT", levels=2), 30, "two bids and two asks")
    bids = sorted((Decimal(o["price"]) for o in orders if o["side"] == "BUY"), reverse=True)
    asks = sorted(Decimal(o["price"]) for o in orders if o["side"] == "SELL")
    assert len(bids) == 2
    assert len(asks) == 2
    assert bids[0] < asks[0]
    for price in bids + asks:
        assert price % Decimal("0.1") == 0
    mid = (bids[0] + asks[0]) / 2
    spread = asks[0] - bids[0]
    # 20 bps of ~65000 is ~130; rounding outward only widens it (by < 2 ticks).
    assert mid * Decimal("0.0020") <= spread + Decimal("0.2")
    assert spread <= mid * Decimal("0.0020") + Decimal("0.2")
