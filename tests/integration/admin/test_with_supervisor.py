"""The admin API with the real supervisor and its workers behind it, quoting on the simulator.

Every test here uses the ``supervisor`` fixture (``pytestmark``): the real process on the admin's
control endpoint, started on empty tables and stopped (SIGTERM: it cancels
every order) before they are emptied again.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from mmsvc.adapters.db.records import SymbolState
from mmsvc.adapters.db.states import KillFlagRepository
from mmsvc.adapters.zmq.control_client import ControlClient
from tests.fixtures.exchange import Exchange
from tests.fixtures.waiting import wait_for
from tests.integration.admin.conftest import (
    ADMIN_SUBJECT,
    OPERATE,
    READ,
    Admin,
    open_orders,
    state_of,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.usefixtures("supervisor")]


def delete_once_idle(admin: Admin, symbol: str, timeout: float = 15) -> requests.Response:
    """DELETE, retried while it is refused (409) for up to `timeout` seconds."""

    def answered() -> tuple[requests.Response] | None:  # a tuple: a 4xx Response is falsy
        response = admin.call("DELETE", f"/v1/mm-configs/{symbol}")
        return None if response.status_code == 409 else (response,)

    answer: tuple[requests.Response] = wait_for(
        answered, timeout, f"DELETE {symbol} to stop answering 409", 0.2
    )
    return answer[0]


def create(admin: Admin, symbol: str, **fields: Any) -> dict[str, Any]:
    response = admin.call("POST", "/v1/mm-configs", body={"symbol": symbol, **fields})
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_readyz_is_200_with_every_dependency_up(admin: Admin) -> None:
    # Polled: each of the admin's gunicorn workers caches its own probes (D25), and one
    # may not have probed this test's supervisor yet.
    response = wait_for(
        lambda: (r := admin.call("GET", "/readyz", token=None)).status_code == 200 and r,
        30,
        "/readyz 200",
    )
    body = response.json()

    assert body["ready"] is True
    assert all(check["ok"] for check in body["checks"].values())


def test_create_answers_201_once_its_paused_worker_runs(admin: Admin, db_engine: Engine) -> None:
    created = create(admin, "BTCUSDT", base_spread_bps="20", num_levels=2)

    assert (created["base_spread_bps"], created["num_levels"]) == ("20", 2)
    assert created["updated_by"] == ADMIN_SUBJECT
    assert state_of(db_engine, "BTCUSDT") is SymbolState.PAUSED
    status = admin.call("GET", "/v1/mm-configs/BTCUSDT/status", token=READ).json()
    assert status["state"]["state"] == "PAUSED"
    wait_for(
        lambda: admin.call("GET", "/v1/mm-configs/BTCUSDT/status", token=READ).json()["live"],
        15,
        "the worker's live status",
    )


def test_every_transition_and_every_illegal_one(
    admin: Admin, db_engine: Engine, exchange: Exchange
) -> None:
    create(admin, "BTCUSDT")

    def post(verb: str) -> requests.Response:
        return admin.call("POST", f"/v1/mm-configs/BTCUSDT/{verb}", token=OPERATE)

    enabled = post("enable")
    assert enabled.status_code == 200, enabled.text
    assert (enabled.json()["state"], enabled.json()["enabled"]) == ("ACTIVE", True)
    assert enabled.json()["actor"] == "operator@tradex.dev"
    for verb in ("enable", "resume"):
        refused = post(verb)
        assert refused.status_code == 409, refused.text
        assert refused.json()["state"] == "ACTIVE"
    wait_for(lambda: open_orders(exchange, "BTCUSDT"), 20, "quotes at the simulator")
    deleted = admin.call("DELETE", "/v1/mm-configs/BTCUSDT")
    assert (deleted.status_code, deleted.json()["state"]) == (409, "ACTIVE")

    assert post("pause").json()["state"] == "PAUSED"
    assert (post("pause").status_code, post("pause").json()["state"]) == (409, "PAUSED")
    wait_for(lambda: not open_orders(exchange, "BTCUSDT"), 15, "orders canceled on pause")
    assert post("resume").json()["state"] == "ACTIVE"
    assert post("pause").status_code == 200

    # Refused (OPEN_ORDERS) until the pause's cancels are confirmed, then done.
    deleted = delete_once_idle(admin, "BTCUSDT")
    assert deleted.status_code == 204, deleted.text
    assert admin.call("GET", "/v1/mm-configs/BTCUSDT", token=READ).status_code == 404
    assert state_of(db_engine, "BTCUSDT") is None


def test_a_config_update_reaches_the_running_worker_without_a_restart(
    admin: Admin, exchange: Exchange
) -> None:
    create(admin, "BTCUSDT", num_levels=1, quote_interval_ms=50)
    assert admin.call("POST", "/v1/mm-configs/BTCUSDT/enable", token=OPERATE).status_code == 200
    wait_for(lambda: len(open_orders(exchange, "BTCUSDT")) == 2, 20, "one level each side")
    control = ControlClient(admin.env["MMSVC_CONTROL_ENDPOINT"])
    worker_before = control.ping()["workers"]["BTCUSDT"]

    response = admin.call("PUT", "/v1/mm-configs/BTCUSDT", body={"num_levels": 3})

    assert response.status_code == 200, response.text
    assert response.json()["num_levels"] == 3
    wait_for(lambda: len(open_orders(exchange, "BTCUSDT")) == 6, 20, "three levels each side")
    worker_after = control.ping()["workers"]["BTCUSDT"]
    control.close()
    assert (worker_after["pid"], worker_after["restarts"]) == (
        worker_before["pid"],
        worker_before["restarts"],
    )


def test_global_kill_through_the_supervisor_then_reset(
    admin: Admin, db_engine: Engine, exchange: Exchange
) -> None:
    create(admin, "BTCUSDT")
    create(admin, "ETHUSDT")
    assert admin.call("POST", "/v1/mm-configs/BTCUSDT/enable", token=OPERATE).status_code == 200

    killed = admin.call("POST", "/v1/mm/emergency/kill", body={"reason": "drill"})

    assert killed.status_code == 200, killed.text
    body = killed.json()
    assert (body["handled_by"], body["kill_switch_active"]) == ("supervisor", True)
    assert body["halted"] == ["BTCUSDT", "ETHUSDT"]
    wait_for(lambda: not open_orders(exchange), 15, "every order canceled")
    refused = admin.call("POST", "/v1/mm-configs/BTCUSDT/enable", token=OPERATE)
    assert (refused.status_code, refused.json()["state"]) == (409, "HALTED")

    reset = admin.call("POST", "/v1/mm/reset")

    assert reset.status_code == 200, reset.text
    assert reset.json()["reset"] == ["BTCUSDT", "ETHUSDT"]
    assert reset.json()["global_flag_cleared"] is True
    with Session(db_engine) as session:
        assert KillFlagRepository(session).get().active is False
    assert state_of(db_engine, "BTCUSDT") is SymbolState.PAUSED


def test_symbol_kill_through_the_supervisor_and_a_reset_of_that_symbol(
    admin: Admin, db_engine: Engine
) -> None:
    create(admin, "BTCUSDT")

    killed = admin.call("POST", "/v1/mm/emergency/kill", body={"symbol": "BTCUSDT"})

    assert killed.json()["handled_by"] == "supervisor"
    assert state_of(db_engine, "BTCUSDT") is SymbolState.HALTED
    reset = admin.call("POST", "/v1/mm/reset", body={"symbol": "BTCUSDT"})
    assert (reset.status_code, reset.json()["reset"]) == (200, ["BTCUSDT"])


def test_reset_with_nothing_halted_is_409_with_the_reason(admin: Admin) -> None:
    create(admin, "BTCUSDT")

    response = admin.call("POST", "/v1/mm/reset")

    assert response.status_code == 409
    assert response.json()["reset"] == []
    assert response.json()["reason"]


def test_flatten_cancels_everything_and_pauses_every_active_symbol(
    admin: Admin, db_engine: Engine, exchange: Exchange
) -> None:
    create(admin, "BTCUSDT")
    create(admin, "ETHUSDT")
    for symbol in ("BTCUSDT", "ETHUSDT"):
        admin.call("POST", f"/v1/mm-configs/{symbol}/enable", token=OPERATE)
    wait_for(lambda: len(open_orders(exchange)) >= 4, 20, "quotes on both symbols")

    response = admin.call("POST", "/v1/mm/emergency/flatten")

    assert response.status_code == 200, response.text
    assert response.json()["ok"] == ["BTCUSDT", "ETHUSDT"]
    wait_for(lambda: not open_orders(exchange), 15, "every order canceled")
    assert state_of(db_engine, "BTCUSDT") is SymbolState.PAUSED
    assert state_of(db_engine, "ETHUSDT") is SymbolState.PAUSED
