"""Admin commands at the supervisor: relayed to workers, answered once, kill and reset.

The admin process sends one JSON request per call on the control channel; the
supervisor answers it itself (ping, spawn, global kill and reset: ARCHITECTURE
D4, D7, D9) or forwards it to the workers concerned and answers once every one
replied or the deadline passed. A worker that is not connected, or does not
answer a kill in time, is halted by the supervisor itself (D7).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import zmq
from sqlalchemy.orm import Session, sessionmaker

from mmsvc.adapters.db.records import RiskTrigger, SymbolState
from mmsvc.adapters.db.states import KillFlagRepository, StateRepository
from mmsvc.adapters.db.transitions import halt, record_risk_event
from mmsvc.adapters.order_service.client import OrderServiceClient
from mmsvc.adapters.status.redis_store import StatusStore
from mmsvc.adapters.zmq import protocol
from mmsvc.config import Settings
from mmsvc.processes.supervisor.lag import LagTracker
from mmsvc.processes.supervisor.pool import WorkerPool
from mmsvc.processes.supervisor.requests import (
    Answer,
    PendingRequest,
    all_answered,
    single,
    summary,
)
from mmsvc.processes.supervisor.router import Router

log = logging.getLogger("mmsvc.supervisor")

REPLY_DEADLINE_S = 5.0
SPAWN_DEADLINE_S = 20.0
CANCEL_DEADLINE_S = 10.0


def _error(status: int, code: str, message: str) -> Answer:
    return status, {"error": {"code": code, "message": message}}


class AdminCommands:
    """The supervisor's command desk; mixed into :class:`Supervisor`, which owns the state."""

    settings: Settings
    sessions: sessionmaker[Session]
    status: StatusStore
    orders: OrderServiceClient | None
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

    def _drain_admin(self) -> None:
        while self.admin.poll(0):
            frames = self.admin.recv_multipart()
            identity, raw = frames[0], frames[-1]
            try:
                request = protocol.loads(raw)
                self._on_admin(identity, request)
            except (ValueError, KeyError, TypeError) as exc:
                self._answer(identity, {"id": None}, _error(400, "BAD_REQUEST", str(exc)))

    def _answer(self, identity: bytes, request: dict[str, Any], answer: Answer) -> None:
        status, body = answer
        reply = {"id": request.get("id"), "status": status, "body": body}
        self.admin.send_multipart([identity, protocol.dumps(reply)])

    # ----------------------------------------------------------- admin commands

    def _on_admin(self, identity: bytes, request: dict[str, Any]) -> None:
        command, symbol = request["cmd"], request.get("symbol")
        if command == protocol.PING:
            self._answer(identity, request, (200, self._health()))
        elif command == protocol.CONFIG_CREATED:
            self._config_created(identity, request, symbol)
        elif command == protocol.KILL and symbol is None:
            self._global_kill(
                RiskTrigger.MANUAL,
                request.get("reason") or "manual emergency kill",
                request.get("actor", "system"),
                identity,
                request,
            )
        elif command == protocol.RESET and symbol is None:
            self._global_reset(identity, request)
        elif command == protocol.FLATTEN:
            self._forward(identity, request, sorted(self.pool.workers), all_answered)
            self._cancel_account_orders()
        elif command == protocol.RESET and self._kill_flag_active():
            self._answer(
                identity,
                request,
                _error(
                    409,
                    "GLOBAL_KILL_ACTIVE",
                    "the global kill switch is set: reset without a symbol first (D9)",
                ),
            )
        elif symbol is None:
            self._answer(identity, request, _error(400, "BAD_REQUEST", f"{command} needs a symbol"))
        elif symbol not in self.pool.workers:
            self._answer(
                identity, request, _error(404, "UNKNOWN_SYMBOL", f"no worker for {symbol}")
            )
        else:
            self._forward(identity, request, [symbol], single)

    def _health(self) -> dict[str, Any]:
        return {
            "workers": {
                s: {"alive": w.alive(), "pid": w.pid, "restarts": w.restarts}
                for s, w in sorted(self.pool.workers.items())
            },
            "kafka_lag_s": self.lag.by_topic(time.time()),
            "lag_trigger_armed": self.lag.armed,  # D8: armed once caught up after start
            "router": dict(self.router.stats),
            "buffered": self.router.buffered(),
        }

    def _forward(
        self,
        identity: bytes,
        request: dict[str, Any],
        symbols: list[str],
        finish: Any,
        deadline_s: float = REPLY_DEADLINE_S,
    ) -> None:
        """Send a command to workers; those not connected are answered for at once."""
        request_id = str(uuid.uuid4())
        command = {
            "t": protocol.COMMAND,
            "id": request_id,
            "cmd": request["cmd"],
            "args": request.get("args", {}),
            "actor": request.get("actor", "system"),
        }
        present = [s for s in symbols if s in self.connected]
        pending = PendingRequest(
            identity,
            str(request.get("id")),
            request["cmd"],
            set(present),
            time.monotonic() + deadline_s,
            finish,
            absent=[s for s in symbols if s not in self.connected],
        )
        if pending.command == protocol.KILL:
            self._halt_silent_workers(pending.absent)
        self.pending[request_id] = pending
        for symbol in present:
            self.workers_ctl.send_multipart([symbol.encode(), protocol.dumps(command)])
        self._finish_if_done(pending, time.monotonic())

    def _finish_if_done(self, pending: PendingRequest, now: float) -> None:
        if not pending.done(now):
            return
        for key, value in list(self.pending.items()):
            if value is pending:
                del self.pending[key]
        if pending.command == protocol.KILL:
            self._halt_silent_workers(sorted(pending.waiting))
        if pending.command == protocol.CONFIG_DELETED:
            for symbol, (status, _) in pending.replies.items():
                if status < 300:
                    self.retire(symbol)
        if pending.admin:
            self._answer(pending.admin, {"id": pending.request_id}, pending.finish(pending))

    def _config_created(self, identity: bytes, request: dict[str, Any], symbol: str | None) -> None:
        if symbol is None:
            self._answer(
                identity, request, _error(400, "BAD_REQUEST", "config_created needs a symbol")
            )
            return
        if symbol in self.pool.workers:
            self._answer(identity, request, (200, {"symbol": symbol, "already_running": True}))
            return
        if len(self.pool.workers) >= self.settings.max_symbols:
            self._answer(
                identity,
                request,
                _error(409, "MAX_SYMBOLS", f"MAX_SYMBOLS={self.settings.max_symbols} reached (D4)"),
            )
            return
        self.pending[f"spawn:{symbol}"] = PendingRequest(
            identity,
            str(request.get("id")),
            request["cmd"],
            {symbol},
            time.monotonic() + SPAWN_DEADLINE_S,
            single,
        )
        self._spawn(symbol)

    def retire(self, symbol: str) -> None:
        """Stop a deleted symbol's worker for good (it refused if it was not idle: D4)."""
        self.pool.stop(symbol)
        link = self.router.detach(symbol)
        if link is not None:
            link.push.close(linger=0)  # type: ignore[attr-defined]
        self.last_seen.pop(symbol, None)
        self.connected.discard(symbol)
        self.status.remove(symbol)

    # ------------------------------------------------------- kill switch, reset

    def _kill_flag_active(self) -> bool:
        with self.sessions() as session:
            return KillFlagRepository(session).get().active

    def _global_kill(
        self,
        trigger: RiskTrigger,
        detail: str,
        actor: str,
        identity: bytes = b"",
        request: dict[str, Any] | None = None,
    ) -> None:
        """Every symbol HALTED, one all-symbols risk event, the flag set (D7)."""
        position, pnl = self._totals()
        with self.sessions.begin() as session:
            if KillFlagRepository(session).set(trigger, reason=detail, actor=actor):
                record_risk_event(
                    session,
                    None,
                    trigger,
                    detail=detail,
                    position_usdt=position,
                    pnl_usdt=pnl,
                    shadow=self.settings.shadow_mode,
                )
        self.status.set_kill_flag(detail, actor)
        log.critical("global kill switch", extra={"trigger": trigger.value, "detail": detail})
        self._cancel_account_orders()
        forwarded = {
            "id": (request or {}).get("id"),
            "cmd": protocol.KILL,
            "actor": actor,
            "args": {"trigger": trigger.value, "detail": detail, "global": True},
        }
        self._forward(identity, forwarded, sorted(self.pool.workers), all_answered)

    def _halt_silent_workers(self, symbols: list[str]) -> None:
        """A kill reaches every symbol even when its worker is busy or dead (D7)."""
        for symbol in symbols:
            if self.orders is not None:
                self.cancels.submit(self.orders.cancel_until_flat, symbol, CANCEL_DEADLINE_S)
            with self.sessions.begin() as session:
                halt(
                    session,
                    symbol,
                    RiskTrigger.MANUAL,
                    detail="worker did not answer the kill",
                    actor="system",
                    shadow=self.settings.shadow_mode,
                    position_usdt=Decimal(0),
                    pnl_usdt=Decimal(0),
                    publish_risk_event=False,
                )

    def _global_reset(self, identity: bytes, request: dict[str, Any]) -> None:
        """Clear the global flag when its condition no longer holds, then reset each symbol (D9)."""
        with self.sessions() as session:
            flag = KillFlagRepository(session).get()
            halted = [
                s.symbol
                for s in StateRepository(session).list()
                if s.state is SymbolState.HALTED and s.symbol in self.pool.workers
            ]
        if flag.active and flag.trigger is RiskTrigger.KAFKA_LAG:
            breach = self._lag_now()
            if breach is not None:
                self._answer(
                    identity,
                    request,
                    _error(
                        409, "KAFKA_LAG", f"consumer lag {breach:.1f}s is still over the threshold"
                    ),
                )
                return
        if flag.active:
            with self.sessions.begin() as session:
                KillFlagRepository(session).clear(
                    reason="reset", actor=request.get("actor", "system")
                )
            self.status.clear_kill_flag()
        if not halted:
            body = {"ok": [], "refused": {}, "no_answer": [], "global_flag_cleared": flag.active}
            self._answer(identity, request, (200 if flag.active else 409, body))
            return
        self._forward(identity, request, halted, summary)

    def _lag_now(self) -> float | None:
        now = time.time()
        worst = max(self.lag.by_topic(now).values(), default=0.0)
        return worst if worst > self.settings.kill_switch_kafka_lag_threshold_s else None

    def _totals(self) -> tuple[Decimal, Decimal]:
        position = pnl = Decimal(0)
        for status in self.status.read_all().values():
            position += Decimal(str(status.get("position_usdt", "0")))
            pnl += Decimal(str(status.get("total_pnl_usdt", "0")))
        return position, pnl

    def _cancel_account_orders(self) -> None:
        if self.orders is not None:
            self.cancels.submit(self.orders.cancel_until_flat, None, CANCEL_DEADLINE_S)
