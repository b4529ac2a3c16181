"""The supervisor process: one Kafka consumer, one worker process per symbol.

Composition root of the supervisor (ARCHITECTURE "The shape asked for"). It
runs the spec's start-up, spawns the workers, then loops: consume and route
(never decoding market data), relay control between the admin process and the
workers, commit offsets past acknowledged messages (D1), watch consumer lag
(D8) and worker health (D2, D17). It never starts market making by itself.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import zmq

from mmsvc.adapters import metrics
from mmsvc.adapters.db.engine import make_engine, make_session_factory
from mmsvc.adapters.db.records import RiskTrigger, SymbolState
from mmsvc.adapters.db.states import KillFlagRepository, StateRepository
from mmsvc.adapters.db.transitions import halt, record_risk_event
from mmsvc.adapters.kafka.codec import engine_event_account_id
from mmsvc.adapters.kafka.consumer import MarketConsumer, consumer_config
from mmsvc.adapters.order_service.client import OrderServiceClient
from mmsvc.adapters.status.redis_store import StatusStore
from mmsvc.adapters.zmq import protocol
from mmsvc.config import Settings
from mmsvc.processes.bootstrap import bootstrap
from mmsvc.processes.supervisor.delivery import DeliveryId
from mmsvc.processes.supervisor.lag import LagTracker
from mmsvc.processes.supervisor.pool import WorkerPool
from mmsvc.processes.supervisor.requests import (
    Answer,
    PendingRequest,
    all_answered,
    single,
    summary,
)
from mmsvc.processes.supervisor.router import Router, WorkerLink
from mmsvc.processes.supervisor.startup import run_startup

log = logging.getLogger("mmsvc.supervisor")

QUEUE_HWM = 1000  # the spec's 1000-message queue per worker
BATCH = 1000
POLL_S = 0.002
HOUSEKEEPING_S = 0.25
COMMIT_S = 1.0
HEARTBEAT_S = 0.5
WORKER_SILENT_S = 10.0
REPLY_DEADLINE_S = 5.0
SPAWN_DEADLINE_S = 20.0
CANCEL_DEADLINE_S = 10.0
GLOBAL_TRIGGERS = frozenset({RiskTrigger.KAFKA_LAG, RiskTrigger.MANUAL})


def _error(status: int, code: str, message: str) -> Answer:
    return status, {"error": {"code": code, "message": message}}


class Supervisor:
    """Owns the consumer, the worker processes and the control channel."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.postgres_url, application_name="mmsvc-supervisor")
        self.sessions = make_session_factory(self.engine)
        self.status = StatusStore(settings.redis_url, settings.redis_prefix)
        self.orders = (
            None if settings.shadow_mode else OrderServiceClient.from_settings(self.settings)
        )
        self.cancels = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cancel")
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.router = Router(settings.system_account_id, engine_event_account_id)
        self.lag = LagTracker(settings.kill_switch_kafka_lag_threshold_s)
        self.pool = WorkerPool(
            self._worker_argv, dict(os.environ), self._worker_died, on_exit=metrics.mark_dead
        )
        self.pending: dict[str, PendingRequest] = {}
        self.last_seen: dict[str, float] = {}
        self.connected: set[str] = set()  # workers that said hello since their (re)start
        self.running = True
        settings.worker_endpoint_dir.mkdir(parents=True, exist_ok=True)
        self.workers_ctl = self._bind(
            zmq.ROUTER, protocol.worker_control_endpoint(settings.worker_endpoint_dir)
        )
        self.workers_ctl.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self.admin = self._bind(zmq.ROUTER, settings.control_endpoint)
        self.consumer: MarketConsumer | None = None

    def _bind(self, kind: int, endpoint: str) -> zmq.Socket[bytes]:
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(endpoint)
        return sock

    def _worker_argv(self, symbol: str) -> list[str]:
        return [sys.executable, "-m", "mmsvc.processes.worker", "--symbol", symbol]

    # ----------------------------------------------------------------- start-up

    def start(self) -> None:
        """The spec's start-up, then one worker per symbol, then subscribe."""
        report = run_startup(self.sessions, self.orders, shadow=self.settings.shadow_mode)
        self._sync_kill_flag_copy()
        for symbol in report.symbols:
            self._spawn(symbol)
        self.consumer = MarketConsumer(
            consumer_config(self.settings.kafka_brokers, self.settings.kafka_group_id),
            on_revoke=self._revoked,
        )

    def _sync_kill_flag_copy(self) -> None:
        with self.sessions() as session:
            flag = KillFlagRepository(session).get()
        if flag.active:
            self.status.set_kill_flag(flag.reason, flag.actor)
        else:
            self.status.clear_kill_flag()

    def _spawn(self, symbol: str) -> None:
        push = self.ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.SNDHWM, QUEUE_HWM)
        push.setsockopt(zmq.LINGER, 0)
        push.bind(protocol.data_endpoint(self.settings.worker_endpoint_dir, symbol))
        self.router.attach(WorkerLink(symbol, push))
        self.pool.start(symbol)
        self.last_seen[symbol] = time.monotonic()

    def _revoked(self, partitions: list[tuple[str, int]]) -> None:
        self.router.tracker.forget(partitions)
        self.lag.forget(partitions)

    # --------------------------------------------------------------------- loop

    def run(self) -> None:
        """Consume, route and keep house until SIGTERM."""
        assert self.consumer is not None
        next_housekeeping = next_commit = next_heartbeat = 0.0
        while self.running:
            self._consume_batch()
            self._drain_workers()
            self._drain_admin()
            now = time.monotonic()
            if now >= next_housekeeping:
                self._housekeeping(now)
                next_housekeeping = now + HOUSEKEEPING_S
            if now >= next_heartbeat:
                self._heartbeat()
                next_heartbeat = now + HEARTBEAT_S
            if now >= next_commit:
                self._commit()
                next_commit = now + COMMIT_S

    def _consume_batch(self) -> None:
        assert self.consumer is not None
        self.router.route_batch(self.consumer.poll(BATCH, POLL_S), self.lag, time.time())

    def _drain_workers(self) -> None:
        while self.workers_ctl.poll(0):
            identity, raw = self.workers_ctl.recv_multipart()
            symbol = identity.decode()
            try:
                message = protocol.loads(raw)
            except ValueError:
                log.error("malformed control message from worker", extra={"symbol": symbol})
                continue
            self.last_seen[symbol] = time.monotonic()
            self._on_worker_message(symbol, message)

    def _on_worker_message(self, symbol: str, message: dict[str, Any]) -> None:
        kind = message.get("t")
        if kind == protocol.ACK:
            deliveries = (DeliveryId(t, p, o) for t, p, o in message.get("d", []))
            self.router.acknowledge(symbol, deliveries)
        elif kind == protocol.HELLO:
            self.connected.add(symbol)
            link = self.router.links.get(symbol.encode())
            if link is not None:
                link.resend_unacked()
                link.flush()
            self._reply_pending(symbol, f"spawn:{symbol}", 201, {"symbol": symbol})
        elif kind == protocol.REPLY:
            self._reply_pending(
                symbol, str(message.get("id")), int(message["status"]), message.get("body", {})
            )

    def _reply_pending(
        self, symbol: str, request_id: str, status: int, body: dict[str, Any]
    ) -> None:
        pending = self.pending.get(request_id)
        if pending is not None:
            pending.reply(symbol, status, body)
            self._finish_if_done(pending, time.monotonic())

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

    def _worker_died(self, symbol: str, code: int) -> None:
        """D2: cancel the symbol's orders at once; the pool restarts the worker."""
        log.error("worker died", extra={"symbol": symbol, "exit_code": code})
        self.connected.discard(symbol)
        metrics.worker_restarted(symbol)
        if self.orders is not None:
            self.cancels.submit(self.orders.cancel_until_flat, symbol, CANCEL_DEADLINE_S)

    # ------------------------------------------------------------- housekeeping

    def _housekeeping(self, now: float) -> None:
        assert self.consumer is not None
        self.pool.poll()
        self.router.flush_all()
        self._kill_hung_workers(now)
        wall = time.time()
        for topic, partition in self.consumer.assignment:
            high = self.consumer.high_watermark(topic, partition)
            if high is not None:
                self.lag.watermark((topic, partition), high, wall)
        for topic, lag_s in self.lag.by_topic(wall).items():
            metrics.set_kafka_lag(topic, lag_s)
        metrics.observe_router(self.router.stats)
        breach = self.lag.breach(wall, self.consumer.assignment)
        if breach is not None and not self._kill_flag_active():
            (topic, partition), lag_s = breach
            self._global_kill(
                RiskTrigger.KAFKA_LAG,
                f"{topic}[{partition}] lag {lag_s:.1f}s > "
                f"{self.settings.kill_switch_kafka_lag_threshold_s:g}s",
                "system",
            )
        for request_id, pending in list(self.pending.items()):
            if pending.done(now) and request_id in self.pending:
                self._finish_if_done(pending, now)

    def _kill_hung_workers(self, now: float) -> None:
        for symbol, worker in self.pool.workers.items():
            silent = now - self.last_seen.get(symbol, now)
            if worker.alive() and silent > WORKER_SILENT_S and worker.proc is not None:
                log.error("worker silent; killing it", extra={"symbol": symbol, "silent_s": silent})
                worker.proc.kill()
                self.last_seen[symbol] = now

    def _heartbeat(self) -> None:
        beat = protocol.dumps({"t": protocol.HEARTBEAT})
        for symbol in self.pool.workers:
            self.workers_ctl.send_multipart([symbol.encode(), beat])
        self.status.heartbeat("supervisor")

    def _commit(self) -> None:
        assert self.consumer is not None
        offsets = self.router.tracker.committable()
        if offsets and self.consumer.commit(offsets):
            self.router.tracker.committed(offsets)

    # ----------------------------------------------------------------- shutdown

    def shutdown(self) -> None:
        """Stop workers (each cancels its own orders), then make sure the account is flat."""
        log.info("supervisor stopping: canceling every order")
        self.pool.stop_all()
        if self.orders is not None:
            result = self.orders.cancel_until_flat(None, CANCEL_DEADLINE_S)
            log.info("orders canceled at shutdown", extra={"flat": result.flat})
        if self.consumer is not None:
            self._commit()
            self.consumer.close()
        self.cancels.shutdown(wait=True)
        self.ctx.destroy(linger=0)
        self.engine.dispose()


def main() -> None:
    """Console script ``mmsvc-supervisor``."""
    settings = bootstrap("supervisor", clean_metrics=True)
    supervisor = Supervisor(settings)

    def stop(*_: object) -> None:
        supervisor.running = False

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        supervisor.start()
        supervisor.run()
    finally:
        supervisor.shutdown()


if __name__ == "__main__":
    main()
