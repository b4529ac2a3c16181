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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import zmq
from sqlalchemy.exc import SQLAlchemyError

from mmsvc.adapters import metrics
from mmsvc.adapters.db.engine import make_engine, make_session_factory
from mmsvc.adapters.db.records import RiskTrigger
from mmsvc.adapters.db.states import KillFlagRepository
from mmsvc.adapters.kafka import topics
from mmsvc.adapters.kafka.codec import engine_event_account_id
from mmsvc.adapters.kafka.connection import connection_config
from mmsvc.adapters.kafka.consumer import MarketConsumer, consumer_config
from mmsvc.adapters.order_service.client import OrderServiceClient
from mmsvc.adapters.status.redis_store import Beat, StatusStore
from mmsvc.adapters.zmq import protocol
from mmsvc.config import Settings
from mmsvc.domain.state import Command
from mmsvc.processes.bootstrap import bootstrap
from mmsvc.processes.global_kill import CANCEL_DEADLINE_S, Kill, KillSwitch
from mmsvc.processes.supervisor.commands import AdminCommands
from mmsvc.processes.supervisor.delivery import DeliveryId
from mmsvc.processes.supervisor.lag import LagTracker
from mmsvc.processes.supervisor.membership import Membership
from mmsvc.processes.supervisor.pool import WorkerPool, fresh_interpreter
from mmsvc.processes.supervisor.requests import (
    PendingRequest,
)
from mmsvc.processes.supervisor.router import Router, WorkerLink
from mmsvc.processes.supervisor.startup import run_startup
from mmsvc.processes.supervisor.template import WorkerTemplate

log = logging.getLogger("mmsvc.supervisor")

QUEUE_HWM = 1000  # the spec's 1000-message queue per worker
BATCH = 1000
POLL_S = 0.002
HOUSEKEEPING_S = 0.25
COMMIT_S = 1.0
HEARTBEAT_S = 0.5
WORKER_SILENT_S = 10.0
GLOBAL_TRIGGERS = frozenset({RiskTrigger.KAFKA_LAG, RiskTrigger.MANUAL})


class Supervisor(AdminCommands, Membership):
    """Owns the consumer, the worker processes and the control channel."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(settings.postgres_url, application_name="mmsvc-supervisor")
        self.sessions = make_session_factory(self.engine)
        self.status = StatusStore(settings.redis_url, settings.redis_prefix)
        self.kill_copy_stale = True  # Redis's copy of the kill flag may differ from PostgreSQL's
        self.orders = (
            None if settings.shadow_mode else OrderServiceClient.from_settings(self.settings)
        )
        self.cancels = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cancel")
        self.kill_switch = KillSwitch(
            self.sessions.begin, self.status, self.orders, settings.shadow_mode
        )
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.router = Router(settings.system_account_id, engine_event_account_id)
        self.lag = LagTracker(settings.kill_switch_kafka_lag_threshold_s)
        self.template = WorkerTemplate(os.environ, fresh_interpreter(self._worker_argv, os.environ))
        self.pool = WorkerPool(
            self._worker_argv,
            dict(os.environ),
            self._worker_died,
            on_exit=metrics.mark_dead,
            launcher=self.template,  # D27: forked from the template, fresh if it cannot be
        )
        self.pending: dict[str, PendingRequest] = {}
        self.last_seen: dict[str, float] = {}
        self.connected: set[str] = set()  # workers that said hello since their (re)start
        self.running = True
        protocol.private_dir(settings.worker_endpoint_dir)  # D24: only our user may connect
        self.workers_ctl = self._bind(
            zmq.ROUTER, protocol.worker_control_endpoint(settings.worker_endpoint_dir)
        )
        self.workers_ctl.setsockopt(zmq.ROUTER_HANDOVER, 1)
        self.admin = self._bind(zmq.ROUTER, settings.control_endpoint, settings.control_curve_dir)
        self.consumer: MarketConsumer | None = None
        self.retired_at: dict[str, float] = {}

    def _bind(self, kind: int, endpoint: str, curve_dir: Path | None = None) -> zmq.Socket[bytes]:
        sock = self.ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)
        protocol.bind_control(sock, endpoint, curve_dir)
        return sock

    def _worker_argv(self, symbol: str) -> list[str]:
        return [sys.executable, "-m", "mmsvc.processes.worker", "--symbol", symbol]

    # ----------------------------------------------------------------- start-up

    def start(self) -> None:
        """The spec's start-up, then join the group: assignments start the workers (D28)."""
        self.template.start()  # imports while start-up runs (D27)
        run_startup(self.sessions, shadow=self.settings.shadow_mode)
        self.kill_copy_stale = not self._sync_kill_flag_copy()
        self.consumer = self._join_group(
            consumer_config(connection_config(self.settings), self.settings.kafka_group_id)
        )

    def _sync_kill_flag_copy(self) -> bool:
        """Copy PostgreSQL's kill flag (the authority, D3) to Redis; False when either failed."""
        try:
            with self.sessions() as session:
                flag = KillFlagRepository(session).get()
        except SQLAlchemyError:
            log.warning("kill flag unreadable; its Redis copy is refreshed later", exc_info=True)
            return False
        if flag.active:
            return self.status.set_kill_flag(flag.reason, flag.actor)
        return self.status.clear_kill_flag()

    def _spawn(self, symbol: str) -> None:
        push = self.ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.SNDHWM, QUEUE_HWM)
        push.setsockopt(zmq.LINGER, 0)
        push.bind(protocol.data_endpoint(self.settings.worker_endpoint_dir, symbol))
        self.router.attach(WorkerLink(symbol, push))
        self.pool.start(symbol)
        self.last_seen[symbol] = time.monotonic()

    # --------------------------------------------------------------------- loop

    def run(self) -> None:
        """Consume, route and keep house until SIGTERM."""
        if self.consumer is None:
            raise RuntimeError("the supervisor was not started")
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
        if self.consumer is None:
            raise RuntimeError("the supervisor was not started")
        self.router.route_batch(self.consumer.poll(BATCH, POLL_S), self.lag, time.time())

    def _drain_workers(self) -> None:
        while self.workers_ctl.poll(0):
            self._on_worker_frames(self.workers_ctl.recv_multipart())

    def _on_worker_frames(self, frames: list[bytes]) -> None:
        """One message from the workers' socket: parsed, applied, never raised out (D24)."""
        try:
            identity, raw = protocol.routed(frames)
            message = protocol.parse_from_worker(raw)
        except protocol.ProtocolError as exc:
            self._rejected("worker", exc)
            return
        symbol = identity.decode("utf-8", "replace")
        if symbol not in self.pool.workers:
            self._rejected("worker", protocol.ProtocolError("identity", f"unknown {symbol!r}"))
            return
        self.last_seen[symbol] = time.monotonic()
        try:
            self._on_worker_message(symbol, message)
        except Exception:
            log.exception("worker message failed", extra={"symbol": symbol})

    def _rejected(self, source: str, exc: protocol.ProtocolError) -> None:
        """Count and log a control frame that was refused (D24)."""
        self.router.stats[f"dropped_control_{exc.reason}"] += 1
        log.warning("control frame refused", extra={"source": source, "reason": str(exc)})

    def _on_worker_message(self, symbol: str, message: protocol.FromWorker) -> None:
        if isinstance(message, protocol.Ack):
            deliveries = (DeliveryId(t, p, o) for t, p, o in message.deliveries)
            self.router.acknowledge(symbol, deliveries)
        elif isinstance(message, protocol.Hello):
            self.connected.add(symbol)
            self.pool.hello(symbol)
            link = self.router.links.get(symbol.encode())
            if link is not None:
                link.resend_unacked()
                link.flush()
            self._reply_pending(symbol, f"spawn:{symbol}", 201, {"symbol": symbol})
        elif isinstance(message, protocol.Reply) and message.id is not None:
            self._reply_pending(symbol, message.id, message.status, message.body)

    def _reply_pending(
        self, symbol: str, request_id: str, status: int, body: protocol.Body
    ) -> None:
        pending = self.pending.get(request_id)
        if pending is not None:
            pending.reply(symbol, status, body)
            self._finish_if_done(pending, time.monotonic())

    def _worker_died(self, symbol: str, code: int) -> None:
        """D2: cancel the symbol's orders at once; the pool restarts the worker."""
        log.error("worker died", extra={"symbol": symbol, "exit_code": code})
        self.connected.discard(symbol)
        metrics.worker_restarted(symbol)
        kill = next(
            (p for p in self.pending.values() if p.command is Command.KILL and symbol in p.waiting),
            None,
        )
        if kill is not None:
            # D23, D30: a kill forwarded to this worker and not answered may never
            # have reached it. Record it now, before the pool starts the successor,
            # so the new worker reads HALTED before its first quote and never comes
            # up PAUSED (waiting for the reply deadline left a PAUSED window).
            self._halt_silent_workers(kill, [symbol])  # cancels until flat too
        elif self.orders is not None:
            self.cancels.submit(self.orders.cancel_until_flat, symbol, CANCEL_DEADLINE_S)

    # ------------------------------------------------------------- housekeeping

    def _housekeeping(self, now: float) -> None:
        if self.consumer is None:
            raise RuntimeError("the supervisor was not started")
        self.pool.poll()
        self.follow_configs(now)
        self.router.flush_all()
        self._kill_hung_workers(now)
        wall = time.time()
        for topic, partition in self.consumer.assignment:
            high = self.consumer.high_watermark(topic, partition)
            if high is not None:
                self.lag.watermark(
                    (topic, partition), high, wall, from_end=topic in topics.MARKET_DATA
                )
        for topic, lag_s in self.lag.by_topic(wall).items():
            metrics.set_kafka_lag(topic, lag_s)
        metrics.observe_router(self.router.stats)
        breach = self.lag.breach(wall, self.consumer.assignment)
        if breach is not None and not self._kill_flag_active():
            (topic, partition), lag_s = breach
            detail = (
                f"{topic}[{partition}] lag {lag_s:.1f}s > "
                f"{self.settings.kill_switch_kafka_lag_threshold_s:g}s"
            )
            self._global_kill(Kill(RiskTrigger.KAFKA_LAG, detail, "system"))
        for request_id, pending in list(self.pending.items()):
            if pending.done(now) and request_id in self.pending:
                self._finish_if_done(pending, now)

    def _kill_hung_workers(self, now: float) -> None:
        for symbol, silent in self.pool.silent(now, self.last_seen, WORKER_SILENT_S):
            log.error("worker silent; killing it", extra={"symbol": symbol, "silent_s": silent})
            self.pool.kill(symbol)
            self.last_seen[symbol] = now

    def _heartbeat(self) -> None:
        beat = protocol.encode(protocol.Heartbeat())
        for symbol in self.pool.workers:
            self.workers_ctl.send_multipart([symbol.encode(), beat])
        self._refill_kill_flag_copy(self.status.heartbeat("supervisor"))

    def _refill_kill_flag_copy(self, beat: Beat) -> None:
        """A Redis that did not answer, or came back without our heartbeat, may have
        lost the kill flag's copy: copy PostgreSQL's again once it answers (D25)."""
        if beat is not Beat.KNOWN:
            self.kill_copy_stale = True
        if self.kill_copy_stale and beat is not Beat.UNREACHABLE:
            self.kill_copy_stale = not self._sync_kill_flag_copy()

    def _commit(self, *, wait: bool = False) -> None:
        if self.consumer is None:
            raise RuntimeError("the supervisor was not started")
        offsets = self.router.tracker.committable()
        if offsets and self.consumer.commit(offsets, wait=wait):
            self.router.tracker.committed(offsets)

    # ----------------------------------------------------------------- shutdown

    def shutdown(self) -> None:
        """Stop workers (each cancels its own orders), then make sure our symbols are flat.

        Only the symbols this supervisor holds: the account's other symbols are
        other hosts' (D29).
        """
        held = sorted(self.pool.workers)
        log.info("supervisor stopping: canceling our symbols' orders", extra={"symbols": held})
        self.pool.stop_all()
        self.template.close()
        if self.orders is not None:
            flat = all(self.orders.cancel_until_flat(s, CANCEL_DEADLINE_S).flat for s in held)
            log.info("orders canceled at shutdown", extra={"flat": flat})
        if self.consumer is not None:
            self._commit(wait=True)
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
