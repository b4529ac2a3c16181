"""PostgreSQL and Redis for the dev stack: check, start when down, say what is missing.

These are real servers installed on the machine; this module never installs
them. It runs the same start commands the machine image uses, and when that is
not possible it says exactly what is missing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import redis

PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
REDIS_URL = "redis://127.0.0.1:6379/0"


class ServiceUnavailableError(RuntimeError):
    """A required local server is down and could not be started."""


def postgres_up(url: str = PG_ADMIN_URL) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def redis_up(url: str = REDIS_URL) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=2).ping())
    except redis.RedisError:
        return False


def _start_postgres() -> None:
    versions = (
        sorted(p.name for p in Path("/etc/postgresql").glob("*"))
        if Path("/etc/postgresql").is_dir()
        else []
    )
    if not versions or shutil.which("pg_ctlcluster") is None:
        raise ServiceUnavailableError(
            "PostgreSQL is not running on 127.0.0.1:5432 and no local cluster was found "
            "(install the Debian package postgresql, or point POSTGRES_URL at a server)"
        )
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"],
        check=False,
        capture_output=True,
    )


def _start_redis() -> None:
    if shutil.which("redis-server") is None:
        raise ServiceUnavailableError(
            "Redis is not running on 127.0.0.1:6379 and redis-server is not installed "
            "(install the Debian package redis-server, or point REDIS_URL at a server)"
        )
    Path("/var/lib/redis").mkdir(parents=True, exist_ok=True)
    Path("/var/log/redis").mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "redis-server",
            "--daemonize",
            "yes",
            "--bind",
            "127.0.0.1",
            "-::1",
            "--port",
            "6379",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            "/var/lib/redis",
            "--logfile",
            "/var/log/redis/ci.log",
        ],
        check=False,
        capture_output=True,
    )


def _wait(check: object, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(0.3)
    raise ServiceUnavailableError(f"{what} did not come up within {timeout:.0f}s")


def ensure_postgres(url: str = PG_ADMIN_URL) -> None:
    """Make sure PostgreSQL answers, starting the local cluster if it is down."""
    if postgres_up(url):
        return
    _start_postgres()
    _wait(lambda: postgres_up(url), "PostgreSQL on 127.0.0.1:5432")


def ensure_redis(url: str = REDIS_URL) -> None:
    """Make sure Redis answers, starting a local server if it is down."""
    if redis_up(url):
        return
    _start_redis()
    _wait(lambda: redis_up(url), "Redis on 127.0.0.1:6379")


def ensure_database(
    admin_url: str, name: str, *, recreate: bool = False, template: str | None = None
) -> str:
    """Create database ``name`` if missing (or anew) and return its SQLAlchemy URL.

    ``template``: a copy of that (already migrated) database, which takes a
    fraction of a second where running every migration again takes seconds;
    nobody may be connected to the template while it is copied.
    """
    with psycopg.connect(admin_url, autocommit=True) as conn:
        if recreate:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            copy = f' TEMPLATE "{template}"' if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{copy}')
    parts = urlsplit(admin_url)
    return f"postgresql+psycopg://{parts.netloc}/{name}"


def drop_database(admin_url: str, name: str) -> None:
    """Drop database ``name`` (and end its sessions); nothing when it does not exist."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def main() -> int:
    """Start PostgreSQL and Redis when they are down, or say in one line what is missing."""
    for name, ensure in (("PostgreSQL", ensure_postgres), ("Redis", ensure_redis)):
        try:
            ensure()
        except ServiceUnavailableError as exc:
            print(f"{name}: {exc}", file=sys.stderr)  # noqa: T201
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
