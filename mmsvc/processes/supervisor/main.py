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
from mmsvc.adapters.db.records import KillFlag, RiskTrigger
from mmsvc.adapters.db.states import KillFlagRepository
from mmsvc.adapters.kafka import topics
from mmsvc.adapters.kafka.codec import engine_event_account_id
from mmsvc.adapters.kafka.connection import connection_config
from mmsvc.adapters.kafka.consumer import MarketConsumer, consumer_config
from mmsvc.adapters.order_service.client import OrderServiceClient
from mmsvc.adapters.status.redis_store import StatusStore
from mmsvc.adapters.zmq import protocol
from mmsvc.config import Settings
from mmsvc.domain.silence import LoopGap
from mmsvc.domain.state import Command
from mmsvc.processes.bootstrap import bootstrap
from mmsvc.processes.db_wait import StoppedWaitingError, sleeping_while, until_database_answers
from mmsvc.processes.global_kill import CANCEL_DEADLINE_S, Kill, KillSwitch
from mmsvc.processes.supervisor.beat import RedisBeat
from mmsvc.processes.supervisor.commands import AdminCommands
from mmsvc.processes.supervisor.delivery import DeliveryId
from mmsvc.processes.supervisor.flat import flatten_without_worker
from mmsvc.processes.supervisor.lag import LagTracker
from mmsvc.processes.supervisor.membership import Membership
from mmsvc.processes.supervisor.pool import WorkerPool, fresh_interpreter
from mmsvc.processes.supervisor.remote import RemoteCommands
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
# Housekeeping runs every HOUSEKEEPING_S; a gap this long means this process did
# not run (stopped, or its loop blocked): no worker is judged on it (silence.py).
OWN_GAP_S = 2.0
GLOBAL_TRIGGERS = frozenset({RiskTrigger.KAFKA_LAG, RiskTrigger.MANUAL})


class Supervisor(AdminCommands, Membership, RemoteCommands):
    """Owns the consumer, the worker processes and the control channel."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.engine = make_engine(
            settings.postgres_url,
            application_name="mmsvc-supervisor",
            statement_timeout_s=settings.postgres_statement_timeout_s,
        )
        self.sessions = make_session_factory(self.engine)
        self.status = StatusStore(
            settings.redis_url,
            settings.redis_prefix,
            process="supervisor",
            socket_timeout_s=settings.redis_socket_timeout_s,
        )
        # D25: the heartbeat and the kill flag's copy go to Redis off the loop.
        self.redis_beat = RedisBeat(self.status, self._read_kill_flag, HEARTBEAT_S)
        self.orders = (
            None if settings.shadow_mode else OrderServiceClient.from_settings(self.settings)
        )
        self.cancels = ThreadPoolExecutor(max_workers=4, thread_name_prefix="cancel")
        self.kill_switch = KillSwitch(
            self.sessions.begin, self.status, self.orders, settings.shadow_mode
        )
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.router = Router(settings.system_account_id, engine_event_account_id)
        self.lag = LagTracker(
            settings.kill_switch_kafka_lag_threshold_s,
            expelled_after_s=settings.kafka_session_timeout_s,
        )
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
        self._own_gap = LoopGap(OWN_GAP_S)
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
        self.handed_over: set[str] = set()

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
        # D25: started during a PostgreSQL outage, it waits (no crash loop), then goes on.
        until_database_answers(
            lambda: run_startup(self.sessions, shadow=self.settings.shadow_mode),
            what="supervisor start-up",
            idle=sleeping_while(lambda: self.running),
        )
        self.redis_beat.start()  # copies PostgreSQL's kill flag to Redis first
        self._start_listening()  # commands from other hosts' admins, the kill flag (D28)
        self.consumer = self._join_group(
            consumer_config(
                connection_config(self.settings),
                self.settings.kafka_group_id,
                session_timeout_s=self.settings.kafka_session_timeout_s,
            )
        )

    def _read_kill_flag(self) -> KillFlag | None:
        """PostgreSQL's kill flag (the authority, D3); None when it did not answer."""
        try:
            with self.sessions() as session:
                return KillFlagRepository(session).get()
        except SQLAlchemyError:
            log.warning("kill flag unreadable; its Redis copy is refreshed later", exc_info=True)
            return None

    @property
    def kill_copy_stale(self) -> bool:
        """True while Redis's copy of the kill flag may differ from PostgreSQL's (D25)."""
        return self.redis_beat.stale

    @kill_copy_stale.setter
    def kill_copy_stale(self, stale: bool) -> None:
        if stale:  # a write of the flag to Redis failed: the beat copies it again
            self.redis_beat.mark_stale()

    def _spawn(self, symbol: str, *, handed_back: bool = False) -> None:
        push = self.ctx.socket(zmq.PUSH)
        push.setsockopt(zmq.SNDHWM, QUEUE_HWM)
        push.setsockopt(zmq.LINGER, 0)
        push.bind(protocol.data_endpoint(self.settings.worker_endpoint_dir, symbol))
        self.router.attach(WorkerLink(symbol, push, warming=True))
        self.pool.start(symbol, handed_back=handed_back)
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
            self._drain_remote(now)
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
            self.router.greeted(symbol)
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
        self.router.restarting(symbol)  # its successor gets the market data at HELLO
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
        else:
            flatten_without_worker(self.cancels, self.orders, symbol)

    # ------------------------------------------------------------- housekeeping

    def _housekeeping(self, now: float) -> None:
        if self.consumer is None:
            raise RuntimeError("the supervisor was not started")
        self.pool.poll()
        self.follow_configs(now)
        self.router.flush_all()
        self._kill_hung_workers(now)
        wall = time.time()
        # The loop ran: a gap since its last turn (a SIGSTOP that ended anywhere in the
        # loop, not only in the consume call) is known before any lag is judged. fresh24:
        # a host frozen while it drained its workers' frames woke into this housekeeping
        # with the tracker unaware, and raised a global kill of "lag 4.9s" (issue 15).
        self.lag.polled(wall)
        positions = self.consumer.positions(self.consumer.assignment)
        for topic, partition in self.consumer.assignment:
            high = self.consumer.high_watermark(topic, partition)
            if high is not None:
                self.lag.watermark(
                    (topic, partition),
                    high,
                    wall,
                    from_end=topic in topics.MARKET_DATA,
                    position=positions.get((topic, partition)),
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
        if self._own_gap.stalled(now):  # our own stall is no worker's silence
            log.warning(
                "supervisor loop stalled; workers get a fresh silence window",
                extra={"stalled_s": round(self._own_gap.last_s, 3)},
            )
            for symbol in self.pool.workers:
                self.last_seen[symbol] = now
        for symbol, silent in self.pool.silent(now, self.last_seen, WORKER_SILENT_S):
            log.error("worker silent; killing it", extra={"symbol": symbol, "silent_s": silent})
            self.pool.kill(symbol)
            self.last_seen[symbol] = now

    def _heartbeat(self) -> None:
        """To every worker; the one in Redis is the beat thread's (D25)."""
        beat = protocol.encode(protocol.Heartbeat())
        for symbol in self.pool.workers:
            self.workers_ctl.send_multipart([symbol.encode(), beat])

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
        self._stop_listening()
        self.redis_beat.stop()
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
    except StoppedWaitingError:
        log.info("stopped while waiting for PostgreSQL")
    finally:
        supervisor.shutdown()


if __name__ == "__main__":
    main()
