"""Probes: /healthz (this process answers) and /readyz (everything it needs answers).

/readyz reads answers cached by background probes (:mod:`readiness`) and
probes nothing on the request thread, so it answers at once with a dependency
dead or hung, and names which (D25).
"""

from __future__ import annotations

from typing import Annotated, Literal

from flask import Blueprint, Response
from pydantic import WithJsonSchema
from sqlalchemy import text

from mmsvc.processes.admin.bodies import Body, respond
from mmsvc.processes.admin.context import AdminContext, ctx
from mmsvc.processes.admin.readiness import Check, CheckResult, ProbeCache

bp = Blueprint("health", __name__)

PROBE_TIMEOUT_S = 1.0


class Health(Body):
    """GET /healthz."""

    status: Literal["alive"]


class Checks(Body):
    """What /readyz checks: one answer per dependency, by name (the one list of them)."""

    postgres: CheckResult
    redis: CheckResult
    kafka: CheckResult
    supervisor: CheckResult


CHECKS = tuple(Checks.model_fields)
"""What /readyz checks, by the name its body gives each."""


class Readiness(Body):
    """GET /readyz: ready when every dependency answered; ``down`` names the others."""

    ready: bool
    down: list[Annotated[str, WithJsonSchema({"type": "string", "enum": list(CHECKS)})]]
    checks: Checks


@bp.get("/healthz")
def healthz() -> Response:
    """200 while the process serves requests; it checks nothing else."""
    return respond(Health(status="alive"))


@bp.get("/readyz")
def readyz() -> Response:
    """200 when PostgreSQL, Redis, Kafka and the supervisor all answered; else 503 naming which."""
    probes = ctx().probes
    if probes is None:
        raise RuntimeError("the readiness probes were not started")
    checks = probes.checks()
    down = sorted(name for name, check in checks.items() if not check.ok)
    body = Readiness(ready=not down, down=down, checks=Checks(**checks))
    return respond(body, 503 if down else 200)


def start_probes(context: AdminContext) -> None:
    """Start this process's background probes of `context`'s dependencies."""
    context.probes = ProbeCache(checks(context))
    context.probes.start()


def checks(context: AdminContext) -> dict[str, Check]:
    """One check per dependency, each raising when it does not answer."""

    def postgres() -> None:
        with context.read() as session:
            session.execute(text("SELECT 1"))

    def kafka() -> None:
        if not context.kafka_admin().list_topics(timeout=PROBE_TIMEOUT_S).brokers:
            raise RuntimeError("no broker in the cluster metadata")

    def supervisor() -> None:
        context.control.ping(PROBE_TIMEOUT_S)

    found: dict[str, Check] = {
        "postgres": postgres,
        "redis": context.status.ping,
        "kafka": kafka,
        "supervisor": supervisor,
    }
    return {name: found[name] for name in CHECKS}
