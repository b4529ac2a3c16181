"""Admin commands at the supervisor: relayed to workers, answered once, kill and reset.

The admin process sends one request per call on the control channel; the
supervisor answers it itself (ping, spawn, global kill and reset: ARCHITECTURE
D4, D7, D9) or forwards it to the workers concerned and answers once every one
replied or the deadline passed. A worker that is not connected, or does not
answer a kill in time, is halted by the supervisor itself with the kill's own
trigger (D7). A reset's KAFKA_LAG check is the supervisor's lag now (D9, D23).
Every frame from the admin socket is untrusted (D24): one that does not parse
is answered 400 when it names who sent it, counted, and skipped.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import zmq
from sqlalchemy.orm import Session, sessionmaker

from mmsvc.adapters.db.engine import database_down
from mmsvc.adapters.db.records import RiskTrigger, SymbolState
from mmsvc.adapters.db.states import KillFlagRepository, StateRepository
from mmsvc.adapters.kafka.consumer import MarketConsumer
from mmsvc.adapters.order_service.client import OrderServiceClient
from mmsvc.adapters.status.redis_store import StatusStore
from mmsvc.adapters.zmq import protocol
from mmsvc.adapters.zmq.protocol import Request
from mmsvc.config import Settings
from mmsvc.domain.state import Command
from mmsvc.processes.global_kill import CANCEL_DEADLINE_S, Kill, KillSwitch
from mmsvc.processes.supervisor.flat import flatten_without_worker
from mmsvc.processes.supervisor.lag import LagTracker
from mmsvc.processes.supervisor.pool import WorkerPool
from mmsvc.processes.supervisor.remote import is_remote
from mmsvc.processes.supervisor.requests import (
    Answer,
    Finisher,
    PendingRequest,
    all_answered,
    single,
    summary,
)
from mmsvc.processes.supervisor.router import Router

log = logging.getLogger("mmsvc.supervisor")

REPLY_DEADLINE_S = 5.0
SPAWN_DEADLINE_S = 20.0


def _error(status: int, code: str, message: str) -> Answer:
    return status, {"error": {"code": code, "message": message}}


class AdminCommands:
    """The supervisor's command desk; mixed into :class:`Supervisor`, which owns the state."""

    settings: Settings
    sessions: sessionmaker[Session]
    status: StatusStore
    kill_copy_stale: bool = True  # while True, PostgreSQL's kill flag is copied to Redis again
    orders: OrderServiceClient | None
    kill_switch: KillSwitch
    cancels: ThreadPoolExecutor
    router: Router
    lag: LagTracker
    pool: WorkerPool
    pending: dict[str, PendingRequest]
    connected: set[str]
    last_seen: dict[str, float]
    workers_ctl: zmq.Socket[bytes]
    admin: zmq.Socket[bytes]

    _spawn: Callable[[str], None]  # the Supervisor's: binds the data socket, starts the process
    holds: Callable[[str], bool]  # Membership's: this supervisor holds the symbol's partition
    config_held_elsewhere: Callable[[str], tuple[int, dict[str, Any]]]  # Membership's
    consumer: MarketConsumer | None
    retired_at: dict[str, float]
    _rejected: Callable[[str, protocol.ProtocolError], None]  # the Supervisor's counter
    _answer_remote: Callable[[bytes, Answer], None]  # RemoteCommands': into the commands table
    _kill_followed: bool  # RemoteCommands': this supervisor acted on the raised flag

    def _drain_admin(self) -> None:
        while self.admin.poll(0):
            self._on_admin_frames(self.admin.recv_multipart())

    def _on_admin_frames(self, frames: list[bytes]) -> None:
        """One message from the admin socket: parsed, answered, never raised out (D24)."""
        if not frames:
            return
        identity = frames[0]
        if is_remote(identity):  # that prefix names a commands-table row, never a peer
            self._rejected("admin", protocol.ProtocolError("identity", "reserved identity"))
            return
        try:
            _, raw = protocol.routed(frames)
            request = protocol.parse_request(raw)
        except protocol.ProtocolError as exc:
            self._rejected("admin", exc)
            if len(frames) > 1:
                request_id = protocol.request_id_of(frames[-1])
                self._answer(identity, request_id, _error(400, "BAD_REQUEST", str(exc)))
            return
        try:
            self._on_admin(identity, request)
        except Exception:
            log.exception("admin request failed", extra={"cmd": request.cmd.value})
            self._answer(identity, request.id, _error(500, "INTERNAL", "the supervisor failed"))

    def _answer(self, identity: bytes, request_id: str | None, answer: Answer) -> None:
        if is_remote(identity):  # asked through PostgreSQL by another host's admin (D28)
            self._answer_remote(identity, answer)
            return
        status, body = answer
        reply = protocol.Reply(request_id, status, body)
        self.admin.send_multipart([identity, protocol.encode(reply)])

    # ----------------------------------------------------------- admin commands

    def _on_admin(self, identity: bytes, request: Request) -> None:
        command, symbol = request.cmd, request.symbol
        if command is Command.PING:
            self._answer(identity, request.id, (200, self._health()))
        elif command is Command.CONFIG_CREATED:
            self._config_created(identity, request)
        elif command is Command.KILL and symbol is None:
            detail = request.reason or "manual emergency kill"
            self._global_kill(Kill(RiskTrigger.MANUAL, detail, request.actor), identity, request)
        elif command is Command.RESET and symbol is None:
            self._global_reset(identity, request)
        elif command is Command.FLATTEN:
            self._forward(identity, request, sorted(self.pool.workers), all_answered)
            self._cancel_account_orders()
        elif command is Command.RESET and self._kill_flag_active():
            self._answer(
                identity,
                request.id,
                _error(
                    409,
                    "GLOBAL_KILL_ACTIVE",
                    "the global kill switch is set: reset without a symbol first (D9)",
                ),
            )
        elif symbol is None:
            self._answer(
                identity, request.id, _error(400, "BAD_REQUEST", f"{command} needs a symbol")
            )
        elif symbol not in self.pool.workers:
            self._answer(
                identity, request.id, _error(404, "UNKNOWN_SYMBOL", f"no worker for {symbol}")
            )
        else:
            self._forward(identity, request, [symbol], single)

    def _health(self) -> dict[str, Any]:
        now = time.time()
        return {
            "workers": {
                s: {"alive": w.alive(), "pid": w.pid, "restarts": w.restarts}
                for s, w in sorted(self.pool.workers.items())
            },
            "kafka_lag_s": self.lag.by_topic(now),
            "kafka_lag_now_s": self.lag.worst_s(now),
            "lag_trigger_armed": self.lag.armed,  # D8: armed once caught up after start
            "lag_trigger_waiting_for": [] if self.lag.armed else self._lag_waiting_for(),
            "router": dict(self.router.stats),
            "buffered": self.router.buffered(),
        }

    def _lag_waiting_for(self) -> list[str]:
        """Every partition the lag trigger waits for (PING, for an operator or a test):
        at most one per partition of each consumed topic, a few dozen."""
        assigned = self.consumer.assignment if self.consumer is not None else []
        return self.lag.waiting_for(assigned)

    def _forward(
        self,
        identity: bytes,
        request: Request,
        symbols: list[str],
        finish: Finisher,
        deadline_s: float = REPLY_DEADLINE_S,
        kill: Kill | None = None,
    ) -> None:
        """Send a command to workers; those not connected are answered for at once."""
        request_id = str(uuid.uuid4())
        args = dict(request.args)
        if request.cmd is Command.RESET:
            # D9/D23: KAFKA_LAG is re-checked against the supervisor's lag now, in ms.
            args["kafka_lag_ms"] = int(self.lag.worst_s(time.time()) * 1000)
        command = protocol.WorkerCommand(request_id, request.cmd, args, request.actor)
        present = [s for s in symbols if s in self.connected]
        if kill is None and request.cmd is Command.KILL and request.symbol is not None:
            detail = str(args.get("detail") or request.reason or f"manual kill by {request.actor}")
            kill = Kill(RiskTrigger.MANUAL, detail, request.actor, request.symbol)
        pending = PendingRequest(
            identity,
            request.id,
            request.cmd,
            set(present),
            time.monotonic() + deadline_s,
            finish,
            absent=[s for s in symbols if s not in self.connected],
            kill=kill,
        )
        self._halt_silent_workers(pending, pending.absent)
        self.pending[request_id] = pending
        frame = protocol.encode(command)
        for symbol in present:
            self.workers_ctl.send_multipart([symbol.encode(), frame])
        self._finish_if_done(pending, time.monotonic())

    def _finish_if_done(self, pending: PendingRequest, now: float) -> None:
        if not pending.done(now):
            return
        for key, value in list(self.pending.items()):
            if value is pending:
                del self.pending[key]
        failed = [s for s, (status, _) in pending.replies.items() if status >= 500]
        self._halt_silent_workers(pending, sorted(pending.waiting) + failed)
        if pending.command is Command.CONFIG_DELETED:
            for symbol, (status, _) in pending.replies.items():
                if status < 300:
                    self.retire(symbol)
        if pending.admin:
            self._answer(pending.admin, pending.request_id, pending.finish(pending))

    def _config_created(self, identity: bytes, request: Request) -> None:
        symbol = request.symbol
        if symbol is None:
            self._answer(
                identity, request.id, _error(400, "BAD_REQUEST", "config_created needs a symbol")
            )
            return
        if symbol in self.connected:
            self._answer(identity, request.id, (200, {"symbol": symbol, "already_running": True}))
            return
        joined = self.consumer is not None and self.consumer.joined
        if joined and not self.holds(symbol):  # D28: the member holding its partition starts it
            self._answer(identity, request.id, self.config_held_elsewhere(symbol))
            return
        launched = symbol in self.pool.workers
        if not launched and len(self.pool.workers) >= self.settings.max_symbols:
            self._answer(
                identity,
                request.id,
                _error(409, "MAX_SYMBOLS", f"MAX_SYMBOLS={self.settings.max_symbols} reached (D4)"),
            )
            return
        self.pending[f"spawn:{symbol}"] = PendingRequest(
            identity,
            request.id,
            request.cmd,
            {symbol},
            time.monotonic() + SPAWN_DEADLINE_S,
            single,
        )
        # Already launched by an assignment an instant ago (its row was there): answered,
        # as any create, at the worker's HELLO; else started now, or by the first
        # assignment, which answers it held elsewhere when it is not ours.
        if joined and not launched:
            self._spawn(symbol)

    def retire(self, symbol: str) -> None:
        """Stop a deleted symbol's worker for good (it refused if it was not idle: D4)."""
        self.retired_at[symbol] = time.monotonic()  # its row is deleted next (follow_configs)
        self.pool.stop(symbol)
        link = self.router.detach(symbol)
        if link is not None:
            link.push.close(linger=0)  # type: ignore[attr-defined]
        self.last_seen.pop(symbol, None)
        self.connected.discard(symbol)
        self.status.remove(symbol)

    # ------------------------------------------------------- kill switch, reset

    # The global flag as last read or raised: what a PostgreSQL outage leaves us (D25).
    _flag_seen: bool = False

    def _kill_flag_active(self) -> bool:
        """The global flag in PostgreSQL; while it does not answer, the flag as last read or
        raised here, so a lag kill acts once at once and no loop exits on the outage (D25)."""
        try:
            with self.sessions() as session:
                self._flag_seen = KillFlagRepository(session).get().active
        except Exception as exc:
            if not database_down(exc):
                raise
            log.warning("kill flag unreadable (PostgreSQL); using the last seen")
        return self._flag_seen

    def _global_kill(
        self, kill: Kill, identity: bytes = b"", request: Request | None = None
    ) -> None:
        """Every symbol HALTED, one all-symbols risk event, the flag set (D7): the shared routine.

        The flag and its event are recorded here; connected workers record their
        own HALTED (they know their position), the others are halted here.
        """
        missed: list[str] = []
        self.kill_switch.raise_flag(kill, self.kill_switch.live(missed), missed)
        self.kill_copy_stale |= bool(missed)  # the copy is retried from PostgreSQL's flag (D25)
        self._flag_seen = True
        self._kill_followed = True  # the other hosts act on its NOTIFY; this one acts here
        self._cancel_account_orders()
        self._kill_own_workers(kill, identity, request)

    def _kill_own_workers(
        self, kill: Kill, identity: bytes = b"", request: Request | None = None
    ) -> None:
        """The global kill sent to every worker of ours; the silent ones halted here (D7)."""
        forwarded = Request(
            None if request is None else request.id,
            Command.KILL,
            None,
            {"trigger": kill.trigger.value, "detail": kill.detail, "global": True},
            kill.actor,
            kill.detail,
        )
        self._forward(identity, forwarded, sorted(self.pool.workers), all_answered, kill=kill)

    def _halt_silent_workers(self, pending: PendingRequest, symbols: list[str]) -> None:
        """A kill reaches every symbol even when its worker is busy or dead (D7).

        Recorded with the kill's own trigger (a KAFKA_LAG kill stays KAFKA_LAG).
        """
        if pending.kill is None or not symbols:
            return
        for symbol in symbols:
            flatten_without_worker(self.cancels, self.orders, symbol)
        detail = f"{pending.kill.detail} (worker did not answer the kill)"
        silent = Kill(pending.kill.trigger, detail, pending.kill.actor, pending.kill.symbol)
        self.kill_switch.halt(silent, symbols, self.kill_switch.live([]), [])

    def _global_reset(self, identity: bytes, request: Request) -> None:
        """Clear the global flag when its condition no longer holds, then reset each symbol (D9)."""
        with self.sessions() as session:
            flag = KillFlagRepository(session).get()
            halted = [
                s.symbol
                for s in StateRepository(session).list()
                if s.state is SymbolState.HALTED and s.symbol in self.pool.workers
            ]
        if flag.active and flag.trigger is RiskTrigger.KAFKA_LAG:
            lag_s = self.lag.worst_s(time.time())
            if lag_s > self.settings.kill_switch_kafka_lag_threshold_s:
                self._answer(
                    identity,
                    request.id,
                    _error(
                        409, "KAFKA_LAG", f"consumer lag {lag_s:.1f}s is still over the threshold"
                    ),
                )
                return
        if flag.active:
            with self.sessions.begin() as session:
                KillFlagRepository(session).clear(reason="reset", actor=request.actor)
            if not self.status.clear_kill_flag():
                self.kill_copy_stale = True  # Redis is a cache: copied again later (D25)
        if not halted:
            body = {"ok": [], "refused": {}, "no_answer": [], "global_flag_cleared": flag.active}
            self._answer(identity, request.id, (200 if flag.active else 409, body))
            return
        self._forward(identity, request, halted, summary)

    def _cancel_account_orders(self) -> None:
        if self.orders is not None:
            self.cancels.submit(self.orders.cancel_until_flat, None, CANCEL_DEADLINE_S)
