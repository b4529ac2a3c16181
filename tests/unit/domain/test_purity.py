"""The trading core stays pure: no I/O library and no wall clock anywhere in mmsvc/domain."""

from __future__ import annotations

import ast
from pathlib import Path

import mmsvc.domain

DOMAIN = Path(mmsvc.domain.__file__).parent
FORBIDDEN = {
    "confluent_kafka", "kafka", "zmq", "sqlalchemy", "psycopg", "flask", "grpc", "requests",
    "redis", "prometheus_client", "fastavro", "time", "datetime", "socket", "os", "uuid",
    "random", "logging", "threading", "asyncio",
}  # fmt: skip


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


def test_domain_modules_import_no_io_library_and_no_clock() -> None:
    offenders = {
        path.name: sorted(imported_roots(path) & FORBIDDEN) for path in DOMAIN.glob("*.py")
    }
    assert {name: found for name, found in offenders.items() if found} == {}
