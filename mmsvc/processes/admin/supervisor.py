"""Asking the supervisor, and turning its answers into the admin API's statuses.

The supervisor (and through it a worker) answers with an HTTP-like status.
404, 409 and 503 pass through with their code, message and the symbol's state;
anything else that is not a success means the two processes disagree on the
protocol, which is a 502, never a success.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from mmsvc.adapters.zmq.control_client import Answer, SupervisorUnavailableError
from mmsvc.domain.state import Command
from mmsvc.processes.admin import routing
from mmsvc.processes.admin.auth import actor
from mmsvc.processes.admin.context import ctx
from mmsvc.processes.admin.errors import ApiError
from mmsvc.processes.admin.views import STATE_NAMES

log = logging.getLogger(__name__)

# The supervisor answers a spawn within 20 s and a forwarded command within 5 s
# (its SPAWN_DEADLINE_S and REPLY_DEADLINE_S); we wait a little longer than it.
SPAWN_TIMEOUT_S = 25.0
COMMAND_TIMEOUT_S = 7.0
PING_TIMEOUT_S = 1.0
PASSED_THROUGH = frozenset({404, 409, 503})


def unavailable(exc: Exception) -> ApiError:
    """The 503 of a supervisor that could not be reached."""
    return ApiError(503, "SUPERVISOR_UNAVAILABLE", f"the supervisor is unavailable: {exc}")


def ask(
    cmd: Command,
    *,
    symbol: str | None = None,
    args: Mapping[str, Any] | None = None,
    reason: str | None = None,
    timeout_s: float = COMMAND_TIMEOUT_S,
) -> Answer:
    """Send a command as the caller to the supervisor running `symbol` (any host's, D28).

    503 SUPERVISOR_UNAVAILABLE when it cannot be reached; 503 MOVING (an answer)
    when the symbol is between owners.
    """
    try:
        return routing.request(
            cmd, actor=actor(), symbol=symbol, args=args, reason=reason, timeout_s=timeout_s
        )
    except SupervisorUnavailableError as exc:
        log.warning("supervisor unavailable", extra={"cmd": cmd, "symbol": symbol})
        raise unavailable(exc) from None


def ask_every_host(cmd: Command, *, timeout_s: float = COMMAND_TIMEOUT_S) -> Answer:
    """A command for every symbol, to this host's and every owning host's supervisor (D28)."""
    try:
        return routing.every_host(cmd, actor=actor(), timeout_s=timeout_s)
    except SupervisorUnavailableError as exc:
        log.warning("supervisor unavailable", extra={"cmd": cmd})
        raise unavailable(exc) from None


def require_reachable() -> None:
    """503 unless the supervisor answers a ping now (checked before a write it must follow)."""
    try:
        ctx().control.ping(PING_TIMEOUT_S)
    except SupervisorUnavailableError as exc:
        raise unavailable(exc) from None


def refusal(status: int, body: Mapping[str, Any]) -> ApiError:
    """A non-success answer as the API's error: 404/409/503 with their code, others 502."""
    raw = body.get("error")
    error: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    code = str(error.get("code") or "REFUSED")
    message = str(error.get("message") or f"refused with status {status}")
    state = body.get("state")
    state = state if state in STATE_NAMES else None
    if status in PASSED_THROUGH:
        return ApiError(status, code, message, state=state)
    log.error("unexpected supervisor answer", extra={"status": status, "code": code})
    return ApiError(502, "BAD_SUPERVISOR_ANSWER", f"supervisor answered {status}: {message}")


def reason_of(body: object) -> str:
    """The human reason in a worker's refusal body."""
    if isinstance(body, Mapping):
        error = body.get("error")
        if isinstance(error, Mapping) and error.get("message"):
            return str(error["message"])
    return str(body)


def symbols(value: object) -> list[str]:
    """A list of symbols from a supervisor body, tolerating a missing or malformed value."""
    return sorted(str(s) for s in value) if isinstance(value, list) else []


def reasons(value: object) -> dict[str, str]:
    """A {symbol: reason} map from a supervisor body."""
    if not isinstance(value, Mapping):
        return {}
    return {str(k): v if isinstance(v, str) else reason_of(v) for k, v in value.items()}
