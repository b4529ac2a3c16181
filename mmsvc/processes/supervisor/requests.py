"""Admin requests in flight at the supervisor: who asked, which workers still owe a reply.

A request forwarded to several workers (global kill, flatten, reset) is
answered once every worker replied or the deadline passed; a worker that did
not reply in time is reported as such rather than waited on forever.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from mmsvc.domain.state import Command
from mmsvc.processes.global_kill import Kill

Answer = tuple[int, dict[str, Any]]
Finisher = Callable[["PendingRequest"], Answer]


@dataclass(slots=True)
class PendingRequest:
    """One admin request awaiting worker replies."""

    admin: bytes
    request_id: str | None
    command: Command
    waiting: set[str]
    deadline: float
    finish: Finisher
    replies: dict[str, tuple[int, dict[str, Any]]] = field(default_factory=dict)
    absent: list[str] = field(default_factory=list)  # not connected: never asked
    kill: Kill | None = None  # a kill's trigger and detail, for workers that cannot record it

    def reply(self, symbol: str, status: int, body: dict[str, Any]) -> None:
        if symbol in self.waiting:
            self.waiting.discard(symbol)
            self.replies[symbol] = (status, body)

    def done(self, now: float) -> bool:
        return not self.waiting or now >= self.deadline

    def timed_out(self) -> list[str]:
        """Workers that never answered (busy, dead, or not connected)."""
        return sorted(self.waiting | set(self.absent))


def single(pending: PendingRequest) -> Answer:
    """The answer of a one-symbol command is that worker's answer, or 503 on silence."""
    if pending.replies:
        return next(iter(pending.replies.values()))
    symbol = ", ".join(pending.timed_out())
    if pending.absent:
        message = f"{symbol}: worker not connected (starting or restarting); retry shortly"
    else:
        message = f"{symbol} did not answer in time"
    return 503, {"error": {"code": "WORKER_UNAVAILABLE", "message": message}}


def summary(pending: PendingRequest) -> Answer:
    """Every worker's answer by symbol; 200 when at least one succeeded (D9's rule)."""
    done = {s: body for s, (status, body) in pending.replies.items() if status < 300}
    refused = {s: body for s, (status, body) in pending.replies.items() if status >= 300}
    body: dict[str, Any] = {
        "ok": sorted(done),
        "refused": {s: _reason(b) for s, b in sorted(refused.items())},
        "no_answer": pending.timed_out(),
    }
    return (200 if done else 409), body


def all_answered(pending: PendingRequest) -> Answer:
    """Like :func:`summary`, but 200 even when nothing applied (flatten, global kill)."""
    _, body = summary(pending)
    return 200, body


def _reason(body: dict[str, Any]) -> str:
    error = body.get("error")
    if isinstance(error, dict):
        return str(error.get("message", error))
    return str(body.get("reason", body))
