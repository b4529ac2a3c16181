"""Commands from any host's admin, and the global kill flag, through PostgreSQL (D28, D32).

The admin process of another host writes a command for this host into
``mm_commands`` and NOTIFYs; the supervisor LISTENs (a direct connection on
its own thread, `mmsvc.adapters.db.listen`), claims its rows and runs each
exactly as a request from its control socket (`AdminCommands._on_admin`),
then writes the answer back. The table is also polled after every reconnect
and every POLL_S, so a NOTIFY lost to an outage delays a command, never drops
it. A ZeroMQ request from this host's admin is not touched: it keeps working
while PostgreSQL is down (D25).

The kill flag in PostgreSQL is the authority (D3): when it is raised on any
host, every supervisor halts its own workers and cancels its own symbols'
orders as soon as the NOTIFY (or, as a backup, the poll) tells it; each
worker's lease renewal reads it too (D30).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from mmsvc.adapters.db import commands
from mmsvc.adapters.db.listen import RECONNECTED, Listener
from mmsvc.adapters.db.records import KillFlag, RiskTrigger
from mmsvc.adapters.db.states import KillFlagRepository
from mmsvc.adapters.order_service.client import OrderServiceClient
from mmsvc.adapters.zmq import protocol
from mmsvc.config import Settings
from mmsvc.processes.global_kill import CANCEL_DEADLINE_S, Kill
from mmsvc.processes.supervisor.pool import WorkerPool

log = logging.getLogger("mmsvc.supervisor.remote")

POLL_S = 2.0
PRUNE_EVERY_S = 600.0
KEEP_S = 86_400.0  # answered commands stay a day: who steered what, from where

Answer = tuple[int, dict[str, Any]]


class RemoteCommands:
    """The supervisor's PostgreSQL channel; mixed into :class:`Supervisor` (owns the state)."""

    settings: Settings
    sessions: sessionmaker[Session]
    pool: WorkerPool
    orders: OrderServiceClient | None
    cancels: ThreadPoolExecutor
    listener: Listener | None = None
    _next_remote_poll: float = 0.0
    _next_prune: float = 0.0
    # True once this supervisor acted on the kill flag now raised (or found it raised
    # at start, where D29's PAUSED start-up applies): each raise is acted on once.
    _kill_followed: bool = False
    _flag_seen: bool = False

    _on_admin: Callable[[bytes, protocol.Request], None]  # AdminCommands'
    _rejected: Callable[[str, protocol.ProtocolError], None]  # the Supervisor's counter
    _kill_own_workers: Callable[[Kill], None]  # AdminCommands'
    _read_kill_flag: Callable[[], KillFlag | None]  # the Supervisor's: None if unreadable

    def _start_listening(self) -> None:
        """LISTEN for commands and the kill flag; the flag as read now is not acted on."""
        flag = self._read_kill_flag()
        self._kill_followed = flag is None or flag.active  # unknown: as if seen (D29)
        self.listener = Listener(
            self.settings.postgres_url,
            (commands.COMMANDS_CHANNEL, commands.KILL_SWITCH_CHANNEL),
            application_name="mmsvc-supervisor-listen",
        )
        self.listener.start()

    def _drain_remote(self, now: float) -> None:
        """Act on what the LISTEN thread heard, and poll the table when due."""
        notes = self.listener.drain() if self.listener is not None else []
        due = now >= self._next_remote_poll or RECONNECTED in notes
        if due:
            self._next_remote_poll = now + POLL_S
        if due or any(channel == commands.KILL_SWITCH_CHANNEL for channel, _ in notes):
            self._follow_kill_flag()
        if due or (commands.COMMANDS_CHANNEL, self.settings.host_id) in notes:
            self._run_remote_commands()
        if due and now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY_S
            self._prune_commands()

    # ---------------------------------------------------------------- commands

    def _run_remote_commands(self) -> None:
        host = self.settings.host_id
        try:
            with self.sessions.begin() as session:
                commands.expire(session, host)
                claimed = commands.claim(session, host)
        except SQLAlchemyError:  # D25: PostgreSQL away; the next poll retries
            log.warning("commands table unreadable; retried at the next poll")
            return
        for queued in claimed:
            self._run_remote(queued)

    def _run_remote(self, queued: commands.QueuedCommand) -> None:
        """One claimed row, parsed as any control frame (D24) and run by the same desk."""
        identity = remote_identity(queued.id)
        log.info(
            "command from another host",
            extra={"cmd": queued.command, "symbol": queued.symbol, "actor": queued.actor},
        )
        try:
            request = protocol.parse_request(queued.as_frame())
        except protocol.ProtocolError as exc:
            self._rejected("commands table", exc)
            self._answer_remote(identity, (400, _error("BAD_REQUEST", str(exc))))
            return
        try:
            self._on_admin(identity, request)
        except Exception:
            log.exception("remote command failed", extra={"cmd": queued.command})
            self._answer_remote(identity, (500, _error("INTERNAL", "the supervisor failed")))

    def _answer_remote(self, identity: bytes, answer: Answer) -> None:
        """Write the answer its admin is polling for; lost if PostgreSQL is away (it times out)."""
        status, body = answer
        try:
            with self.sessions.begin() as session:
                commands.answer(session, command_id(identity), status, body)
        except SQLAlchemyError:
            log.warning("answer to a remote command not recorded", exc_info=True)

    def _prune_commands(self) -> None:
        try:
            with self.sessions.begin() as session:
                commands.prune(session, KEEP_S)
        except SQLAlchemyError:
            log.warning("old commands not pruned", exc_info=True)

    # --------------------------------------------------------------- kill flag

    def _follow_kill_flag(self) -> None:
        """A kill raised on another host halts our workers and cancels our symbols (D28)."""
        try:
            with self.sessions() as session:
                flag = KillFlagRepository(session).get()
        except SQLAlchemyError:  # D25: the last seen stands; the next poll retries
            return
        self._flag_seen = flag.active
        if not flag.active:
            self._kill_followed = False  # reset: the next raise is acted on again
            return
        if self._kill_followed:
            return
        self._kill_followed = True
        trigger = RiskTrigger(flag.trigger.value) if flag.trigger else RiskTrigger.MANUAL
        kill = Kill(trigger, flag.reason or "global kill switch", flag.actor or "system")
        held = sorted(self.pool.workers)
        log.critical(
            "global kill switch raised elsewhere: halting our workers",
            extra={"trigger": trigger.value, "detail": f"symbols {held}"},
        )
        self._kill_own_workers(kill)
        for symbol in held:  # only the symbols we hold (D29); each worker cancels too
            if self.orders is not None:
                self.cancels.submit(self.orders.cancel_until_flat, symbol, CANCEL_DEADLINE_S)

    def _stop_listening(self) -> None:
        if self.listener is not None:
            self.listener.stop()


_PREFIX = b"pg:"


def remote_identity(command_id: int) -> bytes:
    """The 'identity' a remote command's answer is routed by (never a ZeroMQ peer's)."""
    return _PREFIX + str(command_id).encode()


def is_remote(identity: bytes) -> bool:
    return identity.startswith(_PREFIX)


def command_id(identity: bytes) -> int:
    return int(identity[len(_PREFIX) :])


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}
