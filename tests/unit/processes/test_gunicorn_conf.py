"""The admin API binds HTTP_HOST (127.0.0.1 unless the deployment says otherwise)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ENV = {
    "POSTGRES_URL": "postgresql://mm@127.0.0.1:1/mm",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "KAFKA_BROKERS": "127.0.0.1:1",
    "SCHEMA_REGISTRY_URL": "http://127.0.0.1:1",
    "AUTH_SERVICE_URL": "http://127.0.0.1:1",
    "HTTP_PORT": "8181",
}


def gunicorn_bind(tmp_path: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    code = "import mmsvc.processes.admin.gunicorn_conf as c; print(c.bind)"
    env = {**ENV, "MMSVC_RUN_DIR": str(tmp_path), **extra}
    return subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    ("host", "bind"),
    [(None, "127.0.0.1:8181"), ("0.0.0.0", "0.0.0.0:8181"), ("::1", "[::1]:8181")],
)
def test_the_admin_binds_http_host(tmp_path: Path, host: str | None, bind: str) -> None:
    done = gunicorn_bind(tmp_path, **({} if host is None else {"HTTP_HOST": host}))
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == repr([bind])


def test_disabled_auth_on_a_public_bind_stops_the_admin_with_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in ENV.items() if k != "AUTH_SERVICE_URL"}
    done = subprocess.run(
        [sys.executable, "-c", "import mmsvc.processes.admin.gunicorn_conf"],
        env={**env, "MMSVC_RUN_DIR": str(tmp_path), "DISABLE_AUTH": "true", "HTTP_HOST": "0.0.0.0"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("mmsvc: configuration error: DISABLE_AUTH=true refuses HTTP_HOST")
    assert done.stderr.strip().count("\n") == 0
