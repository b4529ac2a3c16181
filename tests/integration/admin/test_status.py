"""Status reads PostgreSQL and the live status workers write to Redis; no supervisor trip."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from mmsvc.adapters.db import leases
from mmsvc.adapters.db.orders import OrderRepository
from mmsvc.adapters.db.positions import PositionRepository
from mmsvc.adapters.db.records import NewOrder, PositionRecord, Side, SymbolState
from mmsvc.adapters.status.redis_store import StatusStore
from tests.integration.admin.conftest import READ, Admin, seed_config

pytestmark = pytest.mark.integration


def worker_status(symbol: str, **overrides: Any) -> dict[str, Any]:
    """A live status shaped as mmsvc.processes.worker.status.live_status writes it."""
    status: dict[str, Any] = {
        "symbol": symbol,
        "state": "ACTIVE",
        "triggers": [],
        "shadow": False,
        "instrument_known": True,
        "instrument_status": "TRADING",
        "position": "0.0150",
        "position_usdt": "975.0015",
        "realized_pnl_usdt": "1.25",
        "unrealized_pnl_usdt": "-0.50",
        "total_pnl_usdt": "0.75",
        "valuation_price": "65000.10",
        "open_orders": 2,
        "orders": [],
        "last_quote": {
            "mid": "65000.10",
            "spread_bps": "10",
            "inventory_usdt": "975.0015",
            "ts_ms": 1_700_000_000_000,
            "levels": [
                {
                    "level": 0,
                    "bid": {"price": "64967.5", "size": "0.0015"},
                    "ask": {"price": "65032.6", "size": "0.0015"},
                }
            ],
        },
        "book_known": True,
        "data_age_ms": 42,
        "pid": 1234,
        "heartbeat_ms": 1_700_000_000_000,
    }
    status.update(overrides)
    return status


@pytest.fixture
def store(admin: Admin, redis_url: str) -> Iterator[StatusStore]:
    """The admin's Redis store (same prefix), as a worker would write to it."""
    store = StatusStore(redis_url, admin.prefix)
    yield store
    store.close()


def test_symbol_status_has_config_state_position_orders_and_live_status(
    admin: Admin, db_engine: Engine, store: StatusStore
) -> None:
    seed_config(db_engine, "BTCUSDT", SymbolState.ACTIVE)
    with Session(db_engine) as session, session.begin():
        order = NewOrder(
            uuid.uuid4(), "BTCUSDT", Side.BUY, Decimal("64967.5"), Decimal("0.0015"), 0
        )
        OrderRepository(session).insert_pending(order)
        PositionRepository(session).upsert(
            PositionRecord(
                "BTCUSDT", Decimal("0.015"), Decimal("65000"), Decimal("1.25"), Decimal("-0.1")
            )
        )
    store.publish("BTCUSDT", worker_status("BTCUSDT"), ttl_s=10)

    response = admin.call("GET", "/v1/mm-configs/BTCUSDT/status", token=READ)

    assert response.status_code == 200
    body = response.json()
    assert body["config"]["symbol"] == "BTCUSDT"
    assert (body["state"]["state"], body["state"]["actor"]) == ("ACTIVE", "seed")
    assert body["position"]["quantity"] == "0.015"
    assert [(o["side"], o["price"], o["status"]) for o in body["open_orders"]] == [
        ("BUY", "64967.5", "PENDING")
    ]
    live = body["live"]
    assert (live["position_usdt"], live["total_pnl_usdt"], live["data_age_ms"]) == (
        "975.0015",
        "0.75",
        42,
    )
    assert live["last_quote"]["levels"][0]["bid"] == {"price": "64967.5", "size": "0.0015"}
    assert 0 <= live["heartbeat_age_s"] < 5
    assert body["kill_switch_active"] is False


def test_symbol_status_without_a_live_worker_has_live_null(admin: Admin, db_engine: Engine) -> None:
    seed_config(db_engine, "BTCUSDT")

    body = admin.call("GET", "/v1/mm-configs/BTCUSDT/status", token=READ).json()

    assert body["live"] is None
    assert body["position"] is None
    assert body["open_orders"] == []


def test_malformed_live_values_become_null_rather_than_break_the_schema(
    admin: Admin, db_engine: Engine, store: StatusStore
) -> None:
    seed_config(db_engine, "BTCUSDT")
    broken = worker_status(
        "BTCUSDT", position_usdt="lots", open_orders="two", state="SLEEPY", last_quote=[1]
    )
    store.publish("BTCUSDT", broken, ttl_s=10)

    live = admin.call("GET", "/v1/mm-configs/BTCUSDT/status", token=READ).json()["live"]

    assert (live["position_usdt"], live["open_orders"], live["state"], live["last_quote"]) == (
        None,
        None,
        None,
        None,
    )
    assert live["total_pnl_usdt"] == "0.75"


def test_overall_status_lists_every_symbol_with_totals(
    admin: Admin, db_engine: Engine, store: StatusStore
) -> None:
    seed_config(db_engine, "BTCUSDT", SymbolState.ACTIVE)
    seed_config(db_engine, "ETHUSDT", SymbolState.ACTIVE)
    seed_config(db_engine, "SOL-PERP", SymbolState.HALTED)
    store.publish("BTCUSDT", worker_status("BTCUSDT"), ttl_s=10)
    store.publish(
        "ETHUSDT",
        worker_status("ETHUSDT", position_usdt="-500.5", total_pnl_usdt="-1.5", open_orders=4),
        ttl_s=10,
    )
    store.heartbeat("supervisor")

    body = admin.call("GET", "/v1/mm/status", token=READ).json()

    assert [(s["symbol"], s["state"], s["live"]) for s in body["symbols"]] == [
        ("BTCUSDT", "ACTIVE", True),
        ("ETHUSDT", "ACTIVE", True),
        ("SOL-PERP", "HALTED", False),
    ]
    assert body["symbols"][2]["trigger"] == "EXPOSURE"
    assert body["totals"] == {
        "symbols": 3,
        "active": 2,
        "paused": 0,
        "halted": 1,
        "live": 2,
        "open_orders": 6,
        "position_usdt": "474.5015",
        "total_pnl_usdt": "-0.75",
    }
    assert body["kill_switch"]["active"] is False
    assert body["shadow_mode"] is False
    assert body["auth_disabled"] is False
    assert 0 <= body["supervisor_heartbeat_age_s"] < 5


def test_an_expired_live_status_is_not_shown_as_live(
    admin: Admin, db_engine: Engine, store: StatusStore
) -> None:
    seed_config(db_engine, "BTCUSDT", SymbolState.ACTIVE)
    store.publish("BTCUSDT", worker_status("BTCUSDT"), ttl_s=-1)

    summary = admin.call("GET", "/v1/mm/status", token=READ).json()["symbols"][0]

    assert (summary["live"], summary["position_usdt"]) == (False, None)


def test_overall_status_names_each_symbols_owner_and_epoch(admin: Admin, db_engine: Engine) -> None:
    """D28: which host runs a symbol, under which epoch; no owner between owners."""
    for symbol in ("BTCUSDT", "ETHUSDT", "SOL-PERP"):
        seed_config(db_engine, symbol)
    with Session(db_engine) as session, session.begin():
        leases.take(session, "BTCUSDT", "host-a/11", 5.0)
        moved = leases.take(session, "ETHUSDT", "host-a/12", 5.0)
        leases.release(session, "ETHUSDT", moved.epoch)  # handed over by a drained host
        leases.take(session, "ETHUSDT", "host-b/21", 5.0)
        gone = leases.take(session, "SOL-PERP", "host-b/22", 5.0)
        leases.release(session, "SOL-PERP", gone.epoch)  # between owners

    body = admin.call("GET", "/v1/mm/status", token=READ).json()

    owners = {s["symbol"]: (s["owner"], s["epoch"]) for s in body["symbols"]}
    assert owners == {
        "BTCUSDT": ("host-a/11", 1),
        "ETHUSDT": ("host-b/21", 2),
        "SOL-PERP": (None, 1),
    }


def test_a_symbol_never_owned_has_no_owner_and_no_epoch(admin: Admin, db_engine: Engine) -> None:
    seed_config(db_engine, "BTCUSDT")
    [summary] = admin.call("GET", "/v1/mm/status", token=READ).json()["symbols"]
    assert (summary["owner"], summary["epoch"]) == (None, None)
