"""Helpers for the PostgreSQL layer's tests: repositories on the rolled-back session."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from uuid import UUID, uuid4

import pytest
from sqlalchemy import Engine, delete
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from mmsvc.adapters.db.configs import ConfigRepository
from mmsvc.adapters.db.models import MMAudit, MMConfig, Outbox
from mmsvc.adapters.db.records import Fill, Liquidity, NewOrder, Side, SymbolState
from mmsvc.adapters.db.states import StateRepository


def _execute_all(session: Session, statements: tuple[object, ...]) -> None:
    for statement in statements:
        session.execute(statement)  # type: ignore[call-overload]


def constraint_refusing(session: Session, *statements: object) -> str:
    """Run `statements` in a savepoint and return the name of the constraint that refused them."""
    with pytest.raises(IntegrityError) as refused, session.begin_nested():
        _execute_all(session, statements)
    name = refused.value.orig.diag.constraint_name  # type: ignore[union-attr]
    assert name, refused.value
    return str(name)


def new_order(symbol: str = "BTCUSDT", **overrides: object) -> NewOrder:
    """A plausible order to write PENDING."""
    values: dict[str, object] = {
        "client_order_id": uuid4(),
        "symbol": symbol,
        "side": Side.BUY,
        "price": Decimal("65000.10"),
        "quantity": Decimal("0.0015"),
        "level": 0,
    }
    values.update(overrides)
    return NewOrder(**values)  # type: ignore[arg-type]


def fill(event_id: str = "ev-1", ts_ms: int = 1_700_000_000_000, **overrides: object) -> Fill:
    """A plausible fill of our order."""
    values: dict[str, object] = {
        "event_id": event_id,
        "symbol": "BTCUSDT",
        "order_id": "o-1",
        "client_order_id": str(UUID(int=1)),
        "side": Side.BUY,
        "price": Decimal("65000.10"),
        "quantity": Decimal("0.0015"),
        "fee": Decimal("-0.0097500150"),
        "fee_asset": "USDT",
        "liquidity": Liquidity.MAKER,
        "ts_ms": ts_ms,
    }
    values.update(overrides)
    return Fill(**values)  # type: ignore[arg-type]


@pytest.fixture
def btc(db_session: Session) -> str:
    """BTCUSDT configured with defaults and PAUSED, inside the test's transaction."""
    ConfigRepository(db_session).create("BTCUSDT", "tester")
    StateRepository(db_session).set("BTCUSDT", SymbolState.PAUSED, reason="created", actor="tester")
    return "BTCUSDT"


@pytest.fixture
def committed_symbol(db_engine: Engine) -> Iterator[str]:
    """A symbol whose config and state are committed, for tests that need two connections."""
    symbol = "LOCKUSDT"
    with Session(db_engine) as session, session.begin():
        ConfigRepository(session).create(symbol, "tester")
        StateRepository(session).set(symbol, SymbolState.PAUSED, reason="created", actor="tester")
    yield symbol
    with Session(db_engine) as session, session.begin():
        session.execute(delete(Outbox).where(Outbox.key == symbol))
        session.execute(delete(MMConfig).where(MMConfig.symbol == symbol))
        session.execute(delete(MMAudit).where(MMAudit.symbol == symbol))
