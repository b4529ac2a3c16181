"""Admin commands between hosts, through PostgreSQL: mm_commands and NOTIFY (D28, D32).

The admin process of any host steers a symbol that another host's supervisor
owns by inserting a row (the target is the host of the symbol's lease owner)
and NOTIFYing :data:`COMMANDS_CHANNEL` in the same transaction; the target
supervisor LISTENs, claims its rows (``taken_at``), runs each through the same
code as a control-channel request and writes the answer the admin polls for.
The channel is authenticated by PostgreSQL's credentials: no port between
hosts. A row nobody took before its admin gave up is answered 504 by that
admin, so a late supervisor never runs a command its caller was told failed.

The global kill flag's changes are NOTIFYed on :data:`KILL_SWITCH_CHANNEL`
(`mmsvc.adapters.db.states`), so every supervisor learns them at once.

Plain statements only (no prepared statement, no session state): callable
through a transaction-mode pooler. Functions work inside the caller's
transaction; :class:`RemoteControl` owns its own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session, sessionmaker

COMMANDS_CHANNEL = "mm_commands"
KILL_SWITCH_CHANNEL = "mm_kill_switch"
# A command older than this is never run: its admin gave up long before (it waits
# at most its command timeout, 7 s); the supervisor answers it 504 instead.
MAX_AGE_S = 15.0
ANSWER_POLL_S = 0.05
GIVEN_UP = 504

Answer = tuple[int, dict[str, Any]]

_INSERT = text(
    "INSERT INTO mm_commands (symbol, command, actor, reason, args, target_host)"
    " VALUES (:symbol, :command, :actor, :reason, :args, :target_host) RETURNING id"
).bindparams(bindparam("args", type_=JSONB))
_NOTIFY = text("SELECT pg_notify(:channel, :payload)")
_CLAIM = text(
    "UPDATE mm_commands SET taken_at = clock_timestamp() WHERE id IN ("
    " SELECT id FROM mm_commands WHERE target_host = :host AND answered_at IS NULL"
    " AND taken_at IS NULL AND created_at > clock_timestamp() - make_interval(secs => :age)"
    " ORDER BY id FOR UPDATE SKIP LOCKED"
    ") RETURNING id, symbol, command, actor, reason, args, target_host"
)
_EXPIRE = text(
    "UPDATE mm_commands SET status = :status, answer = :answer, answered_at = clock_timestamp()"
    " WHERE target_host = :host AND answered_at IS NULL AND taken_at IS NULL"
    " AND created_at <= clock_timestamp() - make_interval(secs => :age) RETURNING id"
).bindparams(bindparam("answer", type_=JSONB))
_ANSWER = text(
    "UPDATE mm_commands SET status = :status, answer = :answer, answered_at = clock_timestamp()"
    " WHERE id = :id AND answered_at IS NULL RETURNING id"
).bindparams(bindparam("answer", type_=JSONB))
_GIVE_UP = text(
    "UPDATE mm_commands SET status = :status, answer = :answer, answered_at = clock_timestamp()"
    " WHERE id = :id AND answered_at IS NULL AND taken_at IS NULL RETURNING id"
).bindparams(bindparam("answer", type_=JSONB))
_ANSWERS = text(
    "SELECT id, status, answer FROM mm_commands WHERE id = ANY(:ids) AND answered_at IS NOT NULL"
)
_PRUNE = text(
    "DELETE FROM mm_commands WHERE created_at < clock_timestamp() - make_interval(secs => :age)"
)


@dataclass(frozen=True, slots=True)
class QueuedCommand:
    """A command a supervisor claimed: what to run, for whom, and the row to answer."""

    id: int
    command: str
    symbol: str | None
    actor: str
    reason: str | None
    args: dict[str, Any] = field(default_factory=dict)
    target_host: str = ""

    def as_frame(self) -> bytes:
        """The control-channel request this row stands for, to parse as any other (D24)."""
        return json.dumps(
            {
                "id": str(self.id),
                "cmd": self.command,
                "symbol": self.symbol,
                "args": self.args,
                "actor": self.actor,
                "reason": self.reason,
            }
        ).encode()


def submit(
    session: Session,
    target_host: str,
    command: str,
    *,
    actor: str,
    symbol: str | None = None,
    reason: str | None = None,
    args: Mapping[str, Any] | None = None,
) -> int:
    """Queue a command for `target_host`'s supervisor and wake it (NOTIFY on commit)."""
    values = {
        "symbol": symbol,
        "command": command,
        "actor": actor,
        "reason": reason,
        "args": dict(args or {}),
        "target_host": target_host,
    }
    command_id = int(session.execute(_INSERT, values).scalar_one())
    notify(session, COMMANDS_CHANNEL, target_host)
    return command_id


def notify(session: Session, channel: str, payload: str) -> None:
    """NOTIFY `channel` when the caller's transaction commits (never before)."""
    session.execute(_NOTIFY, {"channel": channel, "payload": payload})


def claim(session: Session, host: str, max_age_s: float = MAX_AGE_S) -> list[QueuedCommand]:
    """Take `host`'s unanswered commands younger than `max_age_s`, oldest first.

    SKIP LOCKED and ``taken_at``: a command woken twice (NOTIFY and the poll) runs once.
    """
    rows = session.execute(_CLAIM, {"host": host, "age": max_age_s}).all()
    return sorted(
        (
            QueuedCommand(
                int(r.id),
                str(r.command),
                r.symbol,
                str(r.actor),
                r.reason,
                dict(r.args or {}),
                str(r.target_host),
            )
            for r in rows
        ),
        key=lambda c: c.id,
    )


def expire(session: Session, host: str, max_age_s: float = MAX_AGE_S) -> list[int]:
    """Answer 504 `host`'s commands nobody took within `max_age_s` (their admin gave up)."""
    body = _error("EXPIRED", f"not taken by {host} within {max_age_s:g}s")
    params = {"host": host, "age": max_age_s, "status": GIVEN_UP, "answer": body}
    return [int(i) for i in session.execute(_EXPIRE, params).scalars()]


def answer(session: Session, command_id: int, status: int, body: Mapping[str, Any]) -> bool:
    """Write a command's answer; False when it already had one (given up meanwhile)."""
    params = {"id": command_id, "status": status, "answer": dict(body)}
    return session.execute(_ANSWER, params).first() is not None


def give_up(session: Session, command_id: int, why: str) -> bool:
    """Answer 504 a command nobody took yet, so it never runs; False once it was taken."""
    params = {"id": command_id, "status": GIVEN_UP, "answer": _error("GIVEN_UP", why)}
    return session.execute(_GIVE_UP, params).first() is not None


def answers(session: Session, command_ids: Iterable[int]) -> dict[int, Answer]:
    """The answered ones of `command_ids`: id -> (status, body)."""
    rows = session.execute(_ANSWERS, {"ids": list(command_ids)}).all()
    return {int(r.id): (int(r.status), dict(r.answer or {})) for r in rows}


def prune(session: Session, older_than_s: float) -> int:
    """Delete commands created more than `older_than_s` ago; how many went."""
    result = session.execute(_PRUNE, {"age": older_than_s})
    return int(getattr(result, "rowcount", 0) or 0)


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


class RemoteUnanswered(RuntimeError):  # noqa: N818 - names what happened, as ControlClient's
    """The target supervisor did not answer in time; nothing is known of the command."""


@dataclass(frozen=True, slots=True)
class Order:
    """One command for one host (see :meth:`RemoteControl.request_many`)."""

    host: str
    command: str
    symbol: str | None = None
    args: Mapping[str, Any] = field(default_factory=dict)
    reason: str | None = None


class RemoteControl:
    """The admin's end of the commands table: submit, then poll for the answer."""

    def __init__(
        self,
        sessions: sessionmaker[Session],
        *,
        poll_s: float = ANSWER_POLL_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._sessions = sessions
        self._poll_s = poll_s
        self._clock, self._sleep = clock, sleep

    def request(self, order: Order, *, actor: str, timeout_s: float) -> Answer:
        """Run one command on `order.host`'s supervisor; RemoteUnanswered after `timeout_s`."""
        result = self.request_many([order], actor=actor, timeout_s=timeout_s)[order.host]
        if result is None:
            raise RemoteUnanswered(f"the supervisor of {order.host} did not answer in time")
        return result

    def request_many(
        self, orders: list[Order], *, actor: str, timeout_s: float
    ) -> dict[str, Answer | None]:
        """Run commands on several hosts at once; host -> answer, None when unanswered."""
        ids = self.submit(orders, actor=actor)
        got = self.wait(set(ids), timeout_s)
        return {host: got.get(command_id) for command_id, host in ids.items()}

    def submit(self, orders: list[Order], *, actor: str) -> dict[int, str]:
        """Queue the commands in one transaction (each host woken at commit); id -> host."""
        with self._sessions.begin() as session:
            return {
                submit(
                    session,
                    o.host,
                    o.command,
                    actor=actor,
                    symbol=o.symbol,
                    reason=o.reason,
                    args=o.args,
                ): o.host
                for o in orders
            }

    def wait(self, ids: set[int], timeout_s: float) -> dict[int, Answer]:
        """The answers that came within `timeout_s`; the others are given up (never run)."""
        ends = self._clock() + timeout_s
        got: dict[int, Answer] = {}
        while True:
            with self._sessions() as session:
                got.update(answers(session, ids - set(got)))
            if len(got) == len(ids) or self._clock() >= ends:
                break
            self._sleep(self._poll_s)
        for command_id in ids - set(got):
            with self._sessions.begin() as session:
                if not give_up(session, command_id, f"no answer within {timeout_s:g}s"):
                    got.update(answers(session, [command_id]))  # taken: answered just now?
        return {i: a for i, a in got.items() if a[0] != GIVEN_UP}  # given up: unanswered
