"""Every call that needs the supervisor says so with 503 while it is down, and fast (D7)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from tests.integration.admin.conftest import OPERATE, READ, Admin, seed_config, settled_readiness

pytestmark = pytest.mark.integration

NEEDS_SUPERVISOR = [
    ("POST", "/v1/mm-configs", {"symbol": "ETHUSDT"}, None),
    ("PUT", "/v1/mm-configs/BTCUSDT", {"num_levels": 2}, None),
    ("DELETE", "/v1/mm-configs/BTCUSDT", None, None),
    ("POST", "/v1/mm-configs/BTCUSDT/enable", None, OPERATE),
    ("POST", "/v1/mm-configs/BTCUSDT/pause", None, OPERATE),
    ("POST", "/v1/mm-configs/BTCUSDT/resume", None, OPERATE),
    ("POST", "/v1/mm/emergency/flatten", None, None),
    ("POST", "/v1/mm/reset", None, None),
    ("POST", "/v1/mm/reset", {"symbol": "BTCUSDT"}, None),
]


@pytest.mark.parametrize(("method", "path", "body", "token"), NEEDS_SUPERVISOR)
def test_calls_that_need_the_supervisor_answer_503_at_once_when_none_is_connected(
    admin: Admin, db_engine: Engine, method: str, path: str, body: Any, token: str | None
) -> None:
    seed_config(db_engine, "BTCUSDT")
    kwargs: dict[str, Any] = {"body": body}
    if token is not None:
        kwargs["token"] = token

    response = admin.call(method, path, **kwargs)

    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "SUPERVISOR_UNAVAILABLE"
    # refused at the send (connect_timeout_s), not after a reply timeout of seconds
    assert "no supervisor connected" in error["message"]


def test_reads_never_need_the_supervisor(admin: Admin, db_engine: Engine) -> None:
    seed_config(db_engine, "BTCUSDT")

    for path in ("/v1/mm-configs", "/v1/mm/status", "/v1/mm-configs/BTCUSDT/status"):
        assert admin.call("GET", path, token=READ).status_code == 200


def test_readyz_is_503_naming_the_supervisor_while_the_rest_is_up(admin: Admin) -> None:
    status, body = settled_readiness(admin)

    assert status == 503
    checks = body["checks"]
    assert (body["ready"], body["down"]) == (False, ["supervisor"])
    assert {name: c["ok"] for name, c in checks.items()} == {
        "postgres": True,
        "redis": True,
        "kafka": True,
        "supervisor": False,
    }
    assert "SupervisorUnavailableError" in checks["supervisor"]["error"]


def test_healthz_only_says_the_process_answers(admin: Admin) -> None:
    response = admin.call("GET", "/healthz", token=None)

    assert (response.status_code, response.json()) == (200, {"status": "alive"})
