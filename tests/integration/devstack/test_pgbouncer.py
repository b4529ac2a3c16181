"""The dev stack's PgBouncer: transaction mode before PostgreSQL, stopped with the stack (D27)."""

from __future__ import annotations

import socket
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest

from mmsvc.devstack import pgbouncer, stack

pytestmark = pytest.mark.integration


def test_the_pooled_url_reaches_the_same_database_and_stops_with_the_stack(
    tmp_path: Path, database_url: str
) -> None:
    run_dir = tmp_path / "run"
    pooled = pgbouncer.start(run_dir, database_url, max_db_connections=2)
    direct, through = urlsplit(database_url), urlsplit(pooled)
    assert (through.scheme, through.username, through.path) == (
        direct.scheme,
        direct.username,
        direct.path,
    )
    assert through.port != direct.port
    config = (run_dir / "pgbouncer" / "pgbouncer.ini").read_text()
    assert "pool_mode = transaction" in config
    libpq = pooled.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(libpq, prepare_threshold=None) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (direct.path[1:],)
    assert stack.down(run_dir) == ["pgbouncer"]
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", through.port), 1),
    ):
        pass
