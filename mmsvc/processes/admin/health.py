"""Probes: /healthz (this process answers) and /readyz (everything it needs answers)."""

from __future__ import annotations

import time
from collections.abc import Callable

from flask import Blueprint, Response, jsonify
from sqlalchemy import text

from mmsvc.processes.admin.context import ctx

bp = Blueprint("health", __name__)

PROBE_TIMEOUT_S = 1.0


@bp.get("/healthz")
def healthz() -> Response:
    """200 while the process serves requests; it checks nothing else."""
    return jsonify({"status": "alive"})


def _postgres() -> None:
    with ctx().read() as session:
        session.execute(text("SELECT 1"))


def _redis() -> None:
    ctx().status.heartbeats()


def _kafka() -> None:
    metadata = ctx().kafka_admin().list_topics(timeout=PROBE_TIMEOUT_S)
    if not metadata.brokers:
        raise RuntimeError("no broker in the cluster metadata")


def _supervisor() -> None:
    ctx().control.ping(PROBE_TIMEOUT_S)


def _probe(check: Callable[[], None]) -> dict[str, object]:
    started = time.perf_counter()
    error: str | None = None
    try:
        check()
    except Exception as exc:  # noqa: BLE001 - any failure makes the probe fail, and says which
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
    latency = round((time.perf_counter() - started) * 1000, 3)
    return {"ok": error is None, "error": error, "latency_ms": latency}


CHECKS: dict[str, Callable[[], None]] = {
    "postgres": _postgres,
    "redis": _redis,
    "kafka": _kafka,
    "supervisor": _supervisor,
}
"""What /readyz checks, by the name its body (and the Readiness schema) gives each."""


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """200 when PostgreSQL, Redis, Kafka and the supervisor all answer; else 503 naming which."""
    checks = {name: _probe(check) for name, check in CHECKS.items()}
    ready = all(c["ok"] for c in checks.values())
    return jsonify({"ready": ready, "checks": checks}), 200 if ready else 503
