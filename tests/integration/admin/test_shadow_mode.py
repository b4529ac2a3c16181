"""Shadow mode calls the Order Service for nothing, emergency kill included (D18)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from mmsvc.adapters.db.records import SymbolState
from mmsvc.adapters.order_service.client import OrderServiceClient, Outcome, PlaceRequest
from mmsvc.devstack import stack
from tests.fixtures.exchange import Exchange
from tests.integration.admin.conftest import ACCOUNT, Admin, seed_config, serve, state_of

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def shadow_admin(run_dir: Path, admin_env: dict[str, str]) -> Iterator[Admin]:
    """A second admin API with MM_SHADOW_MODE=true on the same database and Redis prefix."""
    env = {**admin_env, "MM_SHADOW_MODE": "true", "HTTP_PORT": str(stack.free_port())}
    with serve(run_dir, env, "admin-api-shadow") as api:
        yield api


def test_shadow_kill_records_everything_and_leaves_the_order_service_alone(
    shadow_admin: Admin, db_engine: Engine, exchange: Exchange
) -> None:
    seed_config(db_engine, "BTCUSDT", SymbolState.ACTIVE)
    orders = OrderServiceClient(exchange.order_service_url, ACCOUNT, ACCOUNT, 2.0)
    request = PlaceRequest(str(uuid.uuid4()), "BTCUSDT", "BUY", Decimal("30000"), Decimal("0.001"))
    assert orders.place(request).outcome is Outcome.ACCEPTED
    try:
        response = shadow_admin.call("POST", "/v1/mm/emergency/kill")

        assert response.status_code == 200
        assert (response.json()["handled_by"], response.json()["orders_flat"]) == ("admin", None)
        assert state_of(db_engine, "BTCUSDT") is SymbolState.HALTED
        assert len(orders.list_open(None)) == 1  # type: ignore[arg-type]
        with db_engine.connect() as conn:
            shadows = conn.execute(text("SELECT DISTINCT payload->>'shadow' FROM outbox")).all()
        assert shadows == [("true",)]
        status = shadow_admin.call("GET", "/v1/mm/status").json()
        assert status["shadow_mode"] is True
    finally:
        orders.cancel_until_flat(None, 5.0)
        orders.close()
