"""Emergency kill with the supervisor down: the admin process does it all itself (D7)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from mmsvc.adapters.db.records import RiskTrigger, SymbolState
from mmsvc.adapters.db.states import KillFlagRepository, StateRepository
from mmsvc.adapters.order_service.client import OrderServiceClient, Outcome, PlaceRequest
from mmsvc.adapters.status.redis_store import StatusStore
from tests.fixtures.exchange import Exchange
from tests.integration.admin.conftest import ADMIN_SUBJECT, OPERATE, READ, Admin, seed_config

pytestmark = pytest.mark.integration

ACCOUNT = "00000000-0000-0000-0000-000000000001"


def outbox(db_engine: Engine) -> list[tuple[str, str | None, dict[str, Any]]]:
    """Every outbox row as (topic, key, payload), in id order."""
    with db_engine.connect() as conn:
        rows = conn.execute(text("SELECT topic, key, payload FROM outbox ORDER BY id"))
        return [(r.topic, r.key, r.payload) for r in rows]


def states(db_engine: Engine) -> dict[str, tuple[SymbolState, RiskTrigger | None, str]]:
    with Session(db_engine) as session:
        return {s.symbol: (s.state, s.trigger, s.actor) for s in StateRepository(session).list()}


@pytest.fixture
def orders(exchange: Exchange) -> Iterator[OrderServiceClient]:
    """The market maker's account at the simulator's Order Service, left without orders."""
    client = OrderServiceClient(exchange.order_service_url, ACCOUNT, ACCOUNT, 2.0)
    yield client
    client.cancel_until_flat(None, 5.0)
    client.close()


def test_global_kill_without_supervisor_sets_flag_halts_every_symbol_and_records_one_event(
    admin: Admin, db_engine: Engine, redis_url: str
) -> None:
    seed_config(db_engine, "BTCUSDT", SymbolState.ACTIVE)
    seed_config(db_engine, "ETHUSDT")
    seed_config(db_engine, "SOL-PERP", SymbolState.HALTED)
    before = len(outbox(db_engine))

    response = admin.call("POST", "/v1/mm/emergency/kill", body={"reason": "drill"})

    assert response.status_code == 200, response.text
    assert response.json() == {
        "scope": "ALL",
        "symbol": None,
        "handled_by": "admin",
        "kill_switch_active": True,
        "halted": ["BTCUSDT", "ETHUSDT", "SOL-PERP"],
        "no_answer": [],
        "orders_flat": True,
    }
    with Session(db_engine) as session:
        flag = KillFlagRepository(session).get()
    assert (flag.active, flag.trigger, flag.reason, flag.actor) == (
        True,
        RiskTrigger.MANUAL,
        "drill",
        ADMIN_SUBJECT,
    )
    assert states(db_engine) == {
        "BTCUSDT": (SymbolState.HALTED, RiskTrigger.MANUAL, ADMIN_SUBJECT),
        "ETHUSDT": (SymbolState.HALTED, RiskTrigger.MANUAL, ADMIN_SUBJECT),
        # Already HALTED: it keeps the trigger its reset must re-check (D9).
        "SOL-PERP": (SymbolState.HALTED, RiskTrigger.EXPOSURE, "seed"),
    }
    new = outbox(db_engine)[before:]
    risk = [(key, p) for topic, key, p in new if topic == "mm.risk.triggered.v1"]
    assert len(risk) == 1
    key, payload = risk[0]
    assert key is None
    assert payload["symbol"] is None
    assert (payload["trigger"], payload["detail"], payload["shadow"]) == ("MANUAL", "drill", False)
    changed = sorted(
        (key, p["new_state"], p["actor"]) for topic, key, p in new if topic == "mm.state.changed.v1"
    )
    assert changed == [
        ("BTCUSDT", "HALTED", ADMIN_SUBJECT),
        ("ETHUSDT", "HALTED", ADMIN_SUBJECT),
    ]
    store = StatusStore(redis_url, admin.prefix)
    copy = store.kill_flag()
    store.close()
    assert copy is not None
    assert copy["actor"] == ADMIN_SUBJECT


def test_a_second_kill_records_nothing_twice(admin: Admin, db_engine: Engine) -> None:
    seed_config(db_engine, "BTCUSDT", SymbolState.ACTIVE)
    admin.call("POST", "/v1/mm/emergency/kill")
    first = outbox(db_engine)

    response = admin.call("POST", "/v1/mm/emergency/kill", body={"reason": "again"})

    assert response.status_code == 200
    assert outbox(db_engine) == first


def test_symbol_kill_without_supervisor_halts_only_that_symbol_with_its_own_event(
    admin: Admin, db_engine: Engine
) -> None:
    seed_config(db_engine, "BTCUSDT", SymbolState.ACTIVE)
    seed_config(db_engine, "ETHUSDT", SymbolState.ACTIVE)

    response = admin.call("POST", "/v1/mm/emergency/kill", body={"symbol": "BTCUSDT"})

    assert response.status_code == 200
    body = response.json()
    assert (body["scope"], body["symbol"], body["halted"]) == ("SYMBOL", "BTCUSDT", ["BTCUSDT"])
    assert body["kill_switch_active"] is False
    assert states(db_engine)["ETHUSDT"][0] is SymbolState.ACTIVE
    risk = [(k, p) for t, k, p in outbox(db_engine) if t == "mm.risk.triggered.v1"]
    assert [(k, p["symbol"], p["trigger"]) for k, p in risk] == [("BTCUSDT", "BTCUSDT", "MANUAL")]


def test_kill_without_supervisor_cancels_the_accounts_orders_until_none_is_open(
    admin: Admin, db_engine: Engine, orders: OrderServiceClient
) -> None:
    seed_config(db_engine, "BTCUSDT", SymbolState.ACTIVE)
    for price in ("30000.0", "30000.1"):
        placed = orders.place(
            PlaceRequest(str(uuid.uuid4()), "BTCUSDT", "BUY", Decimal(price), Decimal("0.001"))
        )
        assert placed.outcome is Outcome.ACCEPTED, placed
    assert len(orders.list_open(None)) == 2  # type: ignore[arg-type]

    response = admin.call("POST", "/v1/mm/emergency/kill")

    assert response.json()["orders_flat"] is True
    assert orders.list_open(None) == []


def test_after_a_kill_enable_and_resume_are_refused_with_the_state(
    admin: Admin, db_engine: Engine
) -> None:
    seed_config(db_engine, "BTCUSDT")
    admin.call("POST", "/v1/mm/emergency/kill")

    for verb in ("enable", "resume"):
        response = admin.call("POST", f"/v1/mm-configs/BTCUSDT/{verb}", token=OPERATE)
        assert response.status_code == 409
        assert response.json()["error"]["code"] == "GLOBAL_KILL_ACTIVE"
        assert response.json()["state"] == "HALTED"


def test_status_shows_the_kill_switch_from_postgres_and_its_redis_copy(
    admin: Admin, db_engine: Engine
) -> None:
    seed_config(db_engine, "BTCUSDT")
    admin.call("POST", "/v1/mm/emergency/kill", body={"reason": "drill"})

    status = admin.call("GET", "/v1/mm/status", token=READ).json()

    switch = status["kill_switch"]
    assert (switch["active"], switch["trigger"], switch["reason"]) == (True, "MANUAL", "drill")
    assert switch["redis_copy_active"] is True
    assert status["totals"]["halted"] == 1
