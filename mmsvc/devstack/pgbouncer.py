"""PgBouncer in transaction mode in front of the local PostgreSQL (ARCHITECTURE D27, D32).

Dev and tests only: production runs its own pooler (README, "PostgreSQL
connections"). The binary is Debian's ``pgbouncer`` package, installed by
``make pgbouncer`` when missing. Config and auth file are generated under the
run directory; authentication is ``trust`` (dev only), so every client name
listed in the auth file may connect without a password. The server side is
capped at `MAX_DB_CONNECTIONS`, so however many clients connect, PostgreSQL
sees at most that many connections from the pool.
"""

from __future__ import annotations

import os
import pwd
import shutil
from pathlib import Path
from urllib.parse import urlsplit

from mmsvc.devstack import processes

NAME = "pgbouncer"
ENV_KEY = "POSTGRES_POOL_URL"
# Client side: every worker, supervisor, admin and outbox process may connect.
MAX_CLIENT_CONN = 2000
# Server side, per database and user: what PostgreSQL really sees (D27's budget).
DEFAULT_POOL_SIZE = 20
MAX_DB_CONNECTIONS = 30
_DEBIAN_BINARY = Path("/usr/sbin/pgbouncer")
INSTALL_HINT = "install Debian's pgbouncer package: `make pgbouncer` or `apt-get install pgbouncer`"


def binary() -> Path:
    """The pgbouncer executable; StackError naming the package when it is missing."""
    found = shutil.which(NAME)
    if found is not None:
        return Path(found)
    if _DEBIAN_BINARY.exists():
        return _DEBIAN_BINARY
    raise processes.StackError(f"pgbouncer is not installed: {INSTALL_HINT}")


def available() -> bool:
    """True when a pgbouncer binary is installed."""
    try:
        binary()
    except processes.StackError:
        return False
    return True


def config_text(
    port: int,
    server_host: str,
    server_port: int,
    auth_file: Path,
    *,
    max_db_connections: int = MAX_DB_CONNECTIONS,
) -> str:
    """pgbouncer.ini: every database of the server, pooled per transaction (D27, D32)."""
    return "\n".join(
        [
            "[databases]",
            f"* = host={server_host} port={server_port}",
            "",
            "[pgbouncer]",
            "listen_addr = 127.0.0.1",
            f"listen_port = {port}",
            # TCP only: no socket file in a shared directory such as /tmp.
            "unix_socket_dir =",
            "auth_type = trust",
            f"auth_file = {auth_file}",
            "pool_mode = transaction",
            f"max_client_conn = {MAX_CLIENT_CONN}",
            f"default_pool_size = {min(DEFAULT_POOL_SIZE, max_db_connections)}",
            f"max_db_connections = {max_db_connections}",
            # psycopg and libpq clients may send these; a pooler cannot keep them per client.
            "ignore_startup_parameters = extra_float_digits,options",
            "server_reset_query =",
            "admin_users = postgres",
            "stats_users = postgres",
            "",
        ]
    )


def start(run_dir: Path, database_url: str, *, max_db_connections: int = MAX_DB_CONNECTIONS) -> str:
    """Start pgbouncer on a free port before `database_url`'s server; return the pooled URL.

    The URL keeps the database and user of `database_url` and the same driver
    scheme, so a caller swaps one URL for the other.
    """
    executable = binary()
    parts = urlsplit(database_url)
    user = parts.username or "postgres"
    port = processes.free_port()
    directory = run_dir / NAME
    directory.mkdir(parents=True, exist_ok=True)
    auth_file = directory / "userlist.txt"
    auth_file.write_text(f'"{user}" ""\n')
    config = directory / "pgbouncer.ini"
    config.write_text(
        config_text(
            port,
            parts.hostname or "127.0.0.1",
            parts.port or 5432,
            auth_file,
            max_db_connections=max_db_connections,
        )
    )
    argv = [str(executable), *_as_unprivileged_user(), str(config)]
    proc = processes.start_process(run_dir, NAME, argv)
    processes.wait_for_port(port, NAME, proc)
    host = f"{parts.username}@" if parts.username else ""
    return f"{parts.scheme}://{host}127.0.0.1:{port}{parts.path}"


def _as_unprivileged_user() -> list[str]:
    """``-u postgres`` when running as root: pgbouncer refuses to run as root.

    It reads its config and auth file before switching user, so files in a
    root-only run directory are fine.
    """
    if os.geteuid() != 0:
        return []
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise processes.StackError(
            "pgbouncer refuses to run as root and no 'postgres' user exists"
        ) from exc
    return ["-u", "postgres"]
