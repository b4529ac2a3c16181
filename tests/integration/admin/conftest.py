"""The admin API under real gunicorn, over real HTTP, on the session's PostgreSQL and Redis.

The app runs as ``gunicorn -c python:mmsvc.processes.admin.gunicorn_conf
mmsvc.processes.admin.wsgi:app`` on a free port, with the exchange simulator's
Auth Service (its dev tokens per role) and Order Service, and a Redis prefix
of its own. Nothing listens on its control endpoint unless a test asks for the
``supervisor`` fixture (the real supervisor and its workers), so most tests
cover what the admin process does without one (D7). Each test starts and ends
with empty tables and an empty Redis prefix.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from mmsvc.adapters.db.configs import ConfigRepository
from mmsvc.adapters.db.records import ConfigFields, RiskTrigger, SymbolState
from mmsvc.adapters.db.states import StateRepository
from mmsvc.adapters.db.transitions import halt
from mmsvc.devstack import stack
from tests.fixtures.exchange import Exchange
from tests.fixtures.waiting import wait_for, wait_serving

# Dev tokens of the simulator's Auth Service (mmsvc/devstack/exchange/default.toml).
READ = "dev-read-token"
OPERATE = "dev-operate-token"
ADMIN = "dev-admin-token"
NO_ROLE = "dev-norole-token"
REVOKED = "dev-revoked-token"
ADMIN_SUBJECT = "admin@tradex.dev"

TABLES = (
    "mm_configs",
    "mm_states",
    "mm_orders",
    "mm_fills",
    "mm_positions",
    "outbox",
    "mm_audit",
    "mm_dead_letters",
    "mm_leases",
    "mm_commands",
)


@dataclass(frozen=True)
class Admin:
    """The running admin API and a few helpers to call it as a given role."""

    url: str
    env: dict[str, str]
    prefix: str
    process: subprocess.Popen[bytes]

    def call(
        self, method: str, path: str, token: str | None = ADMIN, body: Any = None, **kw: Any
    ) -> requests.Response:
        """One request; `token` None sends no Authorization header."""
        headers = {} if token is None else {"Authorization": f"Bearer {token}"}
        headers.update(kw.pop("headers", {}))
        timeout = kw.pop("timeout", 30)
        return requests.request(
            method, f"{self.url}{path}", json=body, headers=headers, timeout=timeout, **kw
        )


@pytest.fixture(scope="session")
def admin_env(
    run_dir: Path,
    database_url: str,
    redis_url: str,
    kafka_bootstrap: str,
    registry_url: str,
    exchange: Exchange,
) -> dict[str, str]:
    """The admin process's environment; its supervisor endpoint has nobody behind it."""
    home = run_dir / f"admin-{uuid.uuid4().hex[:8]}"
    home.mkdir()
    return {
        "POSTGRES_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": f"mmsvc-admin-test:{uuid.uuid4().hex}:",
        "KAFKA_BROKERS": kafka_bootstrap,
        "KAFKA_SESSION_TIMEOUT": "2s",  # a supervisor's first join: 1 s on Tansu, not 3 s
        "SCHEMA_REGISTRY_URL": registry_url,
        "AUTH_SERVICE_URL": exchange.auth_service_url,
        "ORDER_SERVICE_URL": exchange.order_service_url,
        "METADATA_SERVICE_GRPC_URL": exchange.metadata_grpc_url,
        "HTTP_PORT": str(stack.free_port()),
        "MMSVC_RUN_DIR": str(home),
        "MMSVC_CONTROL_ENDPOINT": f"ipc://{home}/control.sock",
        "MAX_SYMBOLS": "5",
        "ADMIN_WORKERS": "2",
        "LOG_LEVEL": "INFO",
    }


@contextmanager
def serve(
    run_dir: Path, env: dict[str, str], name: str, argv: list[str] | None = None
) -> Iterator[Admin]:
    """gunicorn serving the admin API with `env`, as supervisord would run it; stopped after."""
    argv = argv or [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:mmsvc.processes.admin.gunicorn_conf",
        "mmsvc.processes.admin.wsgi:app",
    ]
    proc = stack.start_process(run_dir, name, argv, env=env)
    url = f"http://127.0.0.1:{env['HTTP_PORT']}"
    try:
        wait_serving(f"{url}/healthz", proc, "gunicorn", log=run_dir / "logs" / f"{name}.log")
        yield Admin(url, env, env["REDIS_KEY_PREFIX"], proc)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def admin(run_dir: Path, admin_env: dict[str, str]) -> Iterator[Admin]:
    """The admin API of the session."""
    with serve(run_dir, admin_env, "admin-api") as api:
        yield api


@pytest.fixture
def store_redis(redis_url: str) -> Iterator[redis.Redis]:
    """A Redis client, to look at and seed what the workers would write."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _clean(admin: Admin, db_engine: Engine, store_redis: redis.Redis) -> Iterator[None]:
    """Each test starts and ends with empty tables and an empty Redis prefix."""
    _wipe(admin, db_engine, store_redis)
    yield
    _wipe(admin, db_engine, store_redis)


def _wipe(admin: Admin, db_engine: Engine, client: redis.Redis) -> None:
    with db_engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {', '.join(TABLES)} RESTART IDENTITY CASCADE"))
        # The kill flag is one row the migration creates: reset it, never remove it.
        conn.execute(
            text(
                "UPDATE mm_kill_switch SET active = false, trigger = NULL, "
                "reason = '', actor = 'system' WHERE id = 1"
            )
        )
    keys = list(client.scan_iter(match=f"{admin.prefix}*"))
    if keys:
        client.delete(*keys)


def seed_config(
    db_engine: Engine, symbol: str, state: SymbolState = SymbolState.PAUSED, **fields: Any
) -> None:
    """A committed config and state, as a worker's start-up leaves them."""
    with Session(db_engine) as session, session.begin():
        ConfigRepository(session).create(symbol, "seed", ConfigFields(**fields))
        states = StateRepository(session)
        states.set(symbol, SymbolState.PAUSED, reason="seed", actor="seed")
        if state is SymbolState.ACTIVE:
            states.set(symbol, state, reason="seed", actor="seed")
        elif state is SymbolState.HALTED:
            halt(
                session,
                symbol,
                RiskTrigger.EXPOSURE,
                detail="seed",
                actor="seed",
                shadow=False,
                position_usdt=Decimal(0),
                pnl_usdt=Decimal(0),
            )


# ------------------------------------------------------- a real supervisor

ACCOUNT = "00000000-0000-0000-0000-000000000001"


def open_orders(exchange: Exchange, symbol: str | None = None) -> list[dict[str, Any]]:
    """The market maker's open orders at the simulator."""
    params = {"account_id": ACCOUNT, "status": "OPEN", **({"symbol": symbol} if symbol else {})}
    response = requests.get(f"{exchange.order_service_url}/v1/orders", params=params, timeout=5)
    response.raise_for_status()
    return list(response.json()["orders"])


def state_of(db_engine: Engine, symbol: str) -> SymbolState | None:
    with Session(db_engine) as session:
        record = StateRepository(session).get(symbol)
    return None if record is None else record.state


@pytest.fixture
def supervisor(
    admin: Admin, run_dir: Path, exchange: Exchange
) -> Iterator[subprocess.Popen[bytes]]:
    """The real supervisor behind the admin's control endpoint, stopped after the test."""
    sockets = Path(f"/tmp/mmsvc-admin-{uuid.uuid4().hex[:8]}")
    sockets.mkdir()
    env = {
        **admin.env,
        "KAFKA_GROUP_ID": f"mmsvc-admin-test-{uuid.uuid4().hex[:8]}",
        "MMSVC_WORKER_SOCKET_DIR": str(sockets),
        "PROMETHEUS_MULTIPROC_DIR": str(Path(admin.env["MMSVC_RUN_DIR"]) / "prometheus"),
        # The simulator answers well inside this; 50 ms would make the test about load.
        "KILL_SWITCH_RESPONSE_TIMEOUT_MS": "500",
    }
    argv = [sys.executable, "-m", "mmsvc.processes.supervisor.main"]
    started = time.monotonic()
    proc = stack.start_process(run_dir, "admin-test-supervisor", argv, env=env)
    try:
        wait_for(
            lambda: _answers_ready(admin, proc, started), 60, "the supervisor to answer /readyz"
        )
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        wait_for(lambda: not open_orders(exchange), 15, "no open order after SIGTERM")
        for path in sockets.iterdir():
            path.unlink()
        sockets.rmdir()


def settled_readiness(admin: Admin, timeout_s: float = 2.0) -> tuple[int, dict[str, Any]]:
    """/readyz's status and body once every probe of the answering process has answered.

    /readyz answers from probes cached in the background (D25), so right after
    a start some say "not probed yet". Each request may wait `timeout_s` at
    most: one that waits longer (a probe on the request thread) fails.
    """

    def settled() -> tuple[int, dict[str, Any]] | None:
        response = requests.get(f"{admin.url}/readyz", timeout=timeout_s)
        body: dict[str, Any] = response.json()
        answered = all(check["age_s"] is not None for check in body["checks"].values())
        return (response.status_code, body) if answered else None

    result: tuple[int, dict[str, Any]] = wait_for(settled, 30, "every readiness probe to answer")
    return result


def _answers_ready(admin: Admin, proc: subprocess.Popen[bytes], started: float) -> bool:
    """/readyz is 200 on a supervisor probe made after this supervisor started.

    The admin process is the session's and its probes are cached (D25): right
    after a start, a 200 can still be the previous test's supervisor, gone since.
    """
    if proc.poll() is not None:
        raise AssertionError(f"the supervisor exited with {proc.returncode}")
    response = admin.call("GET", "/readyz", token=None)
    age = response.json()["checks"]["supervisor"]["age_s"]
    fresh = age is not None and age < time.monotonic() - started
    return response.status_code == 200 and fresh
