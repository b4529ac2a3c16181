"""Auth per CONTRACTS.md against the simulator's real introspection endpoint and its dev tokens."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

from mmsvc.devstack import stack
from tests.integration.admin.conftest import (
    ADMIN,
    NO_ROLE,
    OPERATE,
    READ,
    REVOKED,
    Admin,
    seed_config,
    serve,
)

pytestmark = pytest.mark.integration

READS = [("GET", "/v1/mm-configs"), ("GET", "/v1/mm/status"), ("GET", "/v1/mm-configs/BTCUSDT")]
OPERATES = [("POST", f"/v1/mm-configs/BTCUSDT/{verb}") for verb in ("enable", "pause", "resume")]
ADMINS = [
    ("POST", "/v1/mm-configs"),
    ("PUT", "/v1/mm-configs/BTCUSDT"),
    ("DELETE", "/v1/mm-configs/BTCUSDT"),
    ("POST", "/v1/mm/emergency/kill"),
    ("POST", "/v1/mm/emergency/flatten"),
    ("POST", "/v1/mm/reset"),
]
EVERY = READS + OPERATES + ADMINS


@pytest.mark.parametrize(("method", "path"), EVERY)
def test_no_token_is_401_with_a_bearer_challenge(admin: Admin, method: str, path: str) -> None:
    response = admin.call(method, path, token=None)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("token", [REVOKED, "not-a-token-anyone-issued"])
def test_an_inactive_token_is_401(admin: Admin, token: str) -> None:
    response = admin.call("GET", "/v1/mm-configs", token=token)

    assert response.status_code == 401
    assert response.json()["error"]["message"] == "the token is not active"


def test_a_basic_scheme_is_401(admin: Admin) -> None:
    response = admin.call("GET", "/v1/mm-configs", token=None, headers={"Authorization": "Basic x"})

    assert response.status_code == 401


@pytest.mark.parametrize(("method", "path"), READS)
def test_a_token_without_roles_is_403_on_a_read(admin: Admin, method: str, path: str) -> None:
    response = admin.call(method, path, token=NO_ROLE)

    assert response.status_code == 403
    assert response.json()["error"]["message"] == "this call needs the role mm:read"


@pytest.mark.parametrize(("method", "path"), OPERATES + ADMINS)
def test_a_read_only_token_is_403_on_every_write(admin: Admin, method: str, path: str) -> None:
    response = admin.call(method, path, token=READ, body={"symbol": "BTCUSDT"})

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize(("method", "path"), ADMINS)
def test_an_operator_token_is_403_on_admin_calls(admin: Admin, method: str, path: str) -> None:
    response = admin.call(method, path, token=OPERATE, body={"symbol": "BTCUSDT"})

    assert response.status_code == 403
    assert "mm:admin" in response.json()["error"]["message"]


@pytest.mark.parametrize("token", [READ, OPERATE, ADMIN])
def test_every_role_reads_because_higher_roles_imply_lower(admin: Admin, token: str) -> None:
    assert admin.call("GET", "/v1/mm-configs", token=token).status_code == 200


@pytest.mark.parametrize("token", [OPERATE, ADMIN])
def test_operate_and_admin_pass_the_role_check_of_enable(admin: Admin, token: str) -> None:
    # Past auth, the unknown symbol is the answer: the role was enough.
    assert admin.call("POST", "/v1/mm-configs/BTCUSDT/enable", token=token).status_code == 404


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json"])
def test_probes_and_the_document_need_no_token(admin: Admin, path: str) -> None:
    assert admin.call("GET", path, token=None).status_code in (200, 503)


def test_tokens_never_reach_the_log(admin: Admin, run_dir: Path) -> None:
    for token in (READ, OPERATE, ADMIN, NO_ROLE, REVOKED):
        admin.call("GET", "/v1/mm-configs", token=token)
    admin.call("POST", "/v1/mm/emergency/kill", token=ADMIN, body={"symbol": "NOPE"})

    log = (run_dir / "logs" / "admin-api.log").read_text()
    assert "dev-" not in log
    assert "admin@tradex.dev" in log or "GET /v1/mm-configs" in log


@pytest.fixture(scope="module")
def open_admin(run_dir: Path, admin_env: dict[str, str]) -> Iterator[Admin]:
    """An admin API with DISABLE_AUTH=true and no AUTH_SERVICE_URL, for local use."""
    env = {k: v for k, v in admin_env.items() if k != "AUTH_SERVICE_URL"}
    env.update(DISABLE_AUTH="true", HTTP_PORT=str(stack.free_port()))
    with serve(run_dir, env, "admin-api-no-auth") as api:
        yield api


def test_disabled_auth_lets_anyone_in_as_anonymous_and_says_so_at_start_and_in_status(
    open_admin: Admin, db_engine: Engine, run_dir: Path
) -> None:
    seed_config(db_engine, "BTCUSDT")

    response = open_admin.call(
        "POST", "/v1/mm/emergency/kill", token=None, body={"symbol": "BTCUSDT"}
    )

    assert response.status_code == 200
    status = open_admin.call("GET", "/v1/mm-configs/BTCUSDT/status", token=None).json()
    assert status["state"]["actor"] == "anonymous"
    assert open_admin.call("GET", "/v1/mm/status", token=None).json()["auth_disabled"] is True
    log = (run_dir / "logs" / "admin-api-no-auth.log").read_text()
    said = [json.loads(x) for x in log.splitlines() if "DISABLE_AUTH=true" in x]
    assert said
    assert {line["level"] for line in said} == {"CRITICAL"}
