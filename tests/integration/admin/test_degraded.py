"""Dependencies down: the API says which, and an emergency kill still cancels every order.

Redis is a cache (D25): without it the status falls back to PostgreSQL with
``live: null`` and a kill answers 200, since PostgreSQL recorded it.
"""

from __future__ import annotations

import socket
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import requests
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from mmsvc.adapters.db.records import SymbolState
from mmsvc.adapters.db.states import KillFlagRepository
from mmsvc.adapters.order_service.client import OrderServiceClient, Outcome, PlaceRequest
from mmsvc.devstack import stack
from tests.fixtures.exchange import Exchange
from tests.integration.admin.conftest import (
    ACCOUNT,
    READ,
    Admin,
    seed_config,
    serve,
    settled_readiness,
    state_of,
)

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def no_redis_admin(run_dir: Path, admin_env: dict[str, str]) -> Iterator[Admin]:
    """An admin API whose Redis does not answer, started by ``python -m mmsvc.processes.admin``."""
    env = {
        **admin_env,
        "REDIS_URL": f"redis://127.0.0.1:{stack.free_port()}/0",
        "HTTP_PORT": str(stack.free_port()),
    }
    argv = [sys.executable, "-m", "mmsvc.processes.admin"]
    with serve(run_dir, env, "admin-api-no-redis", argv) as api:
        yield api


def test_status_falls_back_to_postgres_with_live_null(
    no_redis_admin: Admin, db_engine: Engine
) -> None:
    seed_config(db_engine, "BTCUSDT", SymbolState.ACTIVE)

    overall = no_redis_admin.call("GET", "/v1/mm/status", token=READ)
    one = no_redis_admin.call("GET", "/v1/mm-configs/BTCUSDT/status", token=READ)

    assert (overall.status_code, one.status_code) == (200, 200)
    body = overall.json()
    assert [(s["symbol"], s["state"], s["live"]) for s in body["symbols"]] == [
        ("BTCUSDT", "ACTIVE", None)
    ]
    assert (body["totals"]["active"], body["totals"]["live"]) == (1, None)
    assert body["kill_switch"]["active"] is False
    assert body["kill_switch"]["redis_copy_active"] is None
    assert body["supervisor_heartbeat_age_s"] is None
    assert (one.json()["state"]["state"], one.json()["live"]) == ("ACTIVE", None)


def test_readyz_names_redis(no_redis_admin: Admin) -> None:
    status, body = settled_readiness(no_redis_admin)

    assert status == 503
    assert (body["checks"]["postgres"]["ok"], body["checks"]["redis"]["ok"]) == (True, False)
    assert "redis" in body["down"]


@pytest.fixture(scope="module")
def hung_peer() -> Iterator[str]:
    """host:port of a server that takes connections and never answers (a hung Redis)."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as server:  # never accepts
        yield f"127.0.0.1:{server.getsockname()[1]}"


@pytest.fixture(scope="module")
def hung_redis_admin(run_dir: Path, admin_env: dict[str, str], hung_peer: str) -> Iterator[Admin]:
    """An admin API whose Redis hangs and whose supervisor never answers (nobody listens)."""
    env = {**admin_env, "REDIS_URL": f"redis://{hung_peer}/0", "HTTP_PORT": str(stack.free_port())}
    with serve(run_dir, env, "admin-api-hung-redis") as api:
        yield api


def test_readyz_answers_from_cached_probes_while_redis_hangs(hung_redis_admin: Admin) -> None:
    # Each request may take 2 s at most (settled_readiness): probing inline, a
    # hung Redis and a silent supervisor cost a second each on every request.
    status, body = settled_readiness(hung_redis_admin, timeout_s=2.0)

    assert (status, body["ready"], body["down"]) == (503, False, ["redis", "supervisor"])
    assert "Timeout" in body["checks"]["redis"]["error"]
    assert (body["checks"]["postgres"]["ok"], body["checks"]["kafka"]["ok"]) == (True, True)
    overall = requests.get(
        f"{hung_redis_admin.url}/v1/mm/status",
        headers={"Authorization": f"Bearer {READ}"},
        timeout=5,
    )
    assert overall.status_code == 200  # the status falls back to PostgreSQL (D25)
    assert overall.json()["kill_switch"]["redis_copy_active"] is None


def test_kill_without_redis_records_in_postgres_cancels_and_answers_200(
    no_redis_admin: Admin, db_engine: Engine, exchange: Exchange
) -> None:
    seed_config(db_engine, "BTCUSDT", SymbolState.ACTIVE)
    orders = OrderServiceClient(exchange.order_service_url, ACCOUNT, ACCOUNT, 2.0)
    request = PlaceRequest(str(uuid.uuid4()), "BTCUSDT", "BUY", Decimal("30000"), Decimal("0.001"))
    assert orders.place(request).outcome is Outcome.ACCEPTED
    try:
        response = no_redis_admin.call("POST", "/v1/mm/emergency/kill")

        assert response.status_code == 200, response.text
        assert response.json()["kill_switch_active"] is True
        assert orders.list_open(None) == []
        assert state_of(db_engine, "BTCUSDT") is SymbolState.HALTED
        with Session(db_engine) as session:
            assert KillFlagRepository(session).get().active is True
    finally:
        orders.cancel_until_flat(None, 5.0)
        orders.close()


@pytest.fixture(scope="module")
def no_auth_service_admin(run_dir: Path, admin_env: dict[str, str]) -> Iterator[Admin]:
    """An admin API whose Auth Service does not answer."""
    env = {
        **admin_env,
        "AUTH_SERVICE_URL": f"http://127.0.0.1:{stack.free_port()}",
        "HTTP_PORT": str(stack.free_port()),
    }
    with serve(run_dir, env, "admin-api-no-auth-service") as api:
        yield api


def test_an_unreachable_auth_service_is_503_never_a_way_in(no_auth_service_admin: Admin) -> None:
    response = no_auth_service_admin.call("GET", "/v1/mm-configs", token=READ)

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "AUTH_UNAVAILABLE"
    assert "dev-read-token" not in response.text


@pytest.fixture(scope="module")
def short_timeout_admin(run_dir: Path, admin_env: dict[str, str]) -> Iterator[Admin]:
    """An admin API whose statements may run one second at most."""
    env = {**admin_env, "POSTGRES_STATEMENT_TIMEOUT": "1s", "HTTP_PORT": str(stack.free_port())}
    with serve(run_dir, env, "admin-api-short-timeout") as api:
        yield api


def test_a_request_blocked_by_a_lock_answers_503_instead_of_hanging(
    short_timeout_admin: Admin, db_engine: Engine
) -> None:
    """D25: a PostgreSQL that accepts connections but does not answer (here: a lock another
    session holds) costs a request thread the statement timeout, then a 503, never a hang."""
    seed_config(db_engine, "BTCUSDT")
    with db_engine.connect() as other, other.begin():
        other.execute(text("LOCK TABLE mm_configs IN ACCESS EXCLUSIVE MODE"))
        response = short_timeout_admin.call("GET", "/v1/mm-configs", token=READ, timeout=15)
    assert response.status_code == 503, response.text
    assert response.json()["error"]["code"] == "DATABASE_UNAVAILABLE"
    after = short_timeout_admin.call("GET", "/v1/mm-configs", token=READ)
    assert after.status_code == 200, after.text
