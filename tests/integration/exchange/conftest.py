"""Helpers for driving the exchange simulator over its real interfaces."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests

from tests.fixtures.exchange import Exchange


@pytest.fixture
def sim(exchange: Exchange) -> Iterator[Exchange]:
    """The session's simulator, with every fault knob cleared after the test."""
    yield exchange
    exchange.clear_faults()


@pytest.fixture
def session() -> Iterator[requests.Session]:
    """A keep-alive HTTP session, as the service uses."""
    with requests.Session() as http:
        yield http


@pytest.fixture
def account() -> str:
    """A market maker account of the test's own, so its orders and events stand apart."""
    return str(uuid.uuid4())


def order_body(account_id: str, **overrides: Any) -> dict[str, Any]:
    """A valid POST /v1/orders body for BTCUSDT (overrides win)."""
    body = {
        "client_order_id": str(uuid.uuid4()),
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "time_in_force": "POST_ONLY",
        "price": "60000.0",
        "quantity": "0.0005",
        "account_id": account_id,
        "user_id": "00000000-0000-0000-0000-000000000001",
        "account_type": "SYSTEM_MARKET_MAKER",
    }
    return {**body, **overrides}


def below_touch(exchange: Exchange, symbol: str, bps: int) -> str:
    """A bid price on the tick grid ``bps`` basis points below the current best bid."""
    market = exchange.market(symbol)
    exponent = Decimal(market["best_bid"]).as_tuple().exponent
    if not isinstance(exponent, int):
        raise ValueError(f"best bid {market['best_bid']} is not finite")
    tick = Decimal(1).scaleb(exponent)
    price = Decimal(market["best_bid"]) * (1 - Decimal(bps) / 10_000)
    return str((price / tick).to_integral_value(rounding="ROUND_FLOOR") * tick)
