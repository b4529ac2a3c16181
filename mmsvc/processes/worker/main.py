"""The worker process of one symbol: composition root and event loop.

It wires the trading core to its adapters and loops over its PULL socket (data
from the supervisor), its DEALER socket (commands) and its timers. It quotes
only while ACTIVE and while it holds its symbol's lease (ARCHITECTURE D26: every
write fenced by the lease's epoch, no place after its local deadline, D32), and
on any uncertainty (stale or unknown book, a failed request, a lost database, a
lost supervisor or lease) it pulls the symbol's quotes. The kill switch lives in
``killing.py`` (D7, D22, D30); the state machine in ``mmsvc/domain/state.py``.
A HALTED worker keeps its book and inventory current but sends nothing but
cancels (D6). Nothing imports this module: it is the composition root.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from decimal import Decimal
from typing import Any, TypeVar

import zmq
from sqlalchemy.exc import DataError, IntegrityError, SQLAlchemyError

from mmsvc.adapters import metrics
from mmsvc.adapters.db import records as db
from mmsvc.adapters.db.engine import database_down, make_session_factory, make_worker_engine
from mmsvc.adapters.db.leases import LEASE_S, Fenced, LeaseHeld, LeaseKeeper, Renewal
from mmsvc.adapters.kafka import topics
from mmsvc.adapters.kafka.codec import AvroCodec, DecodeError
from mmsvc.adapters.kafka.connection import connection_config
from mmsvc.adapters.kafka.events import now_ms
from mmsvc.adapters.kafka.producer import KafkaPublisher, producer_config
from mmsvc.adapters.metadata.client import MetadataClient, MetadataError
from mmsvc.adapters.order_service.client import OrderServiceClient
from mmsvc.adapters.status.redis_store import StatusPublisher, StatusStore
from mmsvc.adapters.zmq import protocol
from mmsvc.config import Settings
from mmsvc.domain import state as machine
from mmsvc.domain.lease import moved_here, owner_name
from mmsvc.domain.model import (
    FINAL_EVENTS,
    Instrument,
    KillDecision,
    RiskTrigger,
    ServiceLimits,
    Side,
    SymbolState,
)
from mmsvc.domain.ratelimit import TokenBucket
from mmsvc.domain.silence import LoopGap
from mmsvc.domain.trader import (
    EVENT_STATUS,
    SymbolTrader,
    fill_from_event,
    instrument_from_record,
)
from mmsvc.observability.tracing import span, tick_span
from mmsvc.processes.bootstrap import bootstrap
from mmsvc.processes.db_wait import StoppedWaitingError, until_database_answers
from mmsvc.processes.worker import HANDED_BACK_ARG
from mmsvc.processes.worker.cadence import Keepalive, StatusCadence, sleep_ms, status_key
from mmsvc.processes.worker.commands import CommandHandler
from mmsvc.processes.worker.edge import Edge
from mmsvc.processes.worker.execution import POST_ONLY_WOULD_CROSS, OrderExecution
from mmsvc.processes.worker.fence import cancel_own, die_with_parent, take_lease
from mmsvc.processes.worker.killing import KillSwitch
from mmsvc.processes.worker.outage import Outage
from mmsvc.processes.worker.shadow import ShadowQuotes
from mmsvc.processes.worker.status import live_status
from mmsvc.processes.worker.store import FencedSessions, WorkerStore

log = logging.getLogger("mmsvc.worker")

T = TypeVar("T")

# D17, D27: how long a worker hears nothing from its supervisor before it cancels and
# exits. A dead supervisor is noticed at once (the parent-death signal); this is for a
# hung one. 5 s made a kill loop at 200 symbols on 2 cores (issue 13's scale bench at
# load 92: supervisor loops stalled 2-12 s, 360 workers quit "supervisor lost" and their
# restarts fed the load). A hung supervisor's worker is not blind meanwhile: kills reach
# it through its lease renewal every second (D30), and market data stops, so quotes
# are pulled once the book goes stale.
SUPERVISOR_SILENT_S = 15.0
# The supervisor check runs about every second; a longer gap means this worker did
# not run (stopped with its host, or blocked): not the supervisor's silence.
OWN_GAP_S = 2.0
STATUS_TTL_S = 10.0  # a status not rewritten for this long reads as absent
# While waiting for PostgreSQL at start (D25): a heartbeat and a supervisor check this often.
WAITING_BEAT_S = 0.5
LEASE_WAIT_S = 30.0
# The Order Service's answers are read by pool threads while the main thread works
# through market data. At CPython's default 5 ms switch interval each socket read of
# an answer waited up to 5 ms for the main thread to let go of the GIL, several times
# per request: places took a median 5-10 ms against a bare client's 2.7 ms on the same
# simulator, and the soak's RESPONSE_TIMEOUT kills (issue 12) were answers of 51-77 ms
# whose simulator side took under 20 ms. 1 ms, as the dev simulator uses.
GIL_SWITCH_S = 0.001
# D31, D32: a place unanswered for its budget plus this long never came alive.
VENUE_HOLD_MAX_S = 5.0
METADATA_RETRY_S = 5.0
EXIT_LOST_SUPERVISOR = 3
EXIT_LOST_DATABASE = 4
EXIT_FENCED = 5


def service_limits(settings: Settings) -> ServiceLimits:
    """The spec's service-wide thresholds, in the core's milliseconds."""
    return ServiceLimits(
        market_data_staleness_ms=int(settings.market_data_staleness_threshold_s * 1000),
        kafka_lag_threshold_ms=int(settings.kill_switch_kafka_lag_threshold_s * 1000),
        reject_storm_count=settings.kill_switch_reject_storm_count,
        reject_storm_window_ms=int(settings.kill_switch_reject_storm_window_s * 1000),
        response_timeout_ms=settings.kill_switch_response_timeout_ms,
        max_orders_per_second=settings.max_orders_per_second,
    )


class Worker:
    """One symbol's loop: market data in, decisions out, commands answered."""

    def __init__(self, settings: Settings, symbol: str, *, handed_back: bool = False) -> None:
        self.settings = settings
        self.symbol = symbol
        self.handed_back = handed_back  # told by the supervisor (HANDED_BACK_ARG, D28)
        self.shadow = settings.shadow_mode
        # D27, D32: one kept connection, to the pooler when there is one.
        self.engine = make_worker_engine(
            settings.postgres_pool_url or settings.postgres_url,
            application_name=f"mmsvc-{symbol}",
            statement_timeout_s=settings.postgres_statement_timeout_s,
            idle_in_transaction_s=LEASE_S,  # a frozen worker's lock ends with its lease
        )
        sessions = make_session_factory(self.engine)
        owner = owner_name(settings.host_id, os.getpid())
        self.keeper = LeaseKeeper(sessions, symbol, owner=owner)
        self.store = WorkerStore(sessions, symbol, shadow=self.shadow, fence=self.keeper)
        self.codec = AvroCodec(settings.schema_registry_url)
        # Written off the quoting loop: a hung Redis never holds a quote (D25).
        self.status = StatusPublisher(
            StatusStore(
                settings.redis_url,
                settings.redis_prefix,
                process=f"worker:{symbol}",
                socket_timeout_s=settings.redis_socket_timeout_s,
            )
        )
        # Issue 13: an idle worker writes its status and heartbeat only when due.
        self.status_cadence = StatusCadence()
        self.keepalive = Keepalive()
        self.fenced = False
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self._control_connected = False
        self.running = True
        self.exit_code = 0
        # D13: quote_interval_ms spaces requotes that act (send orders) and is the
        # timer of decisions; a market change waits only for the spacing.
        self.last_action_ms = 0
        self.last_decision_ms = 0
        self.market_dirty = False
        # Issue 13: the inputs of the last decision that had nothing to do; a decision
        # on the same inputs would have nothing to do either, so it is skipped.
        self.quiet_inputs: tuple[object, ...] | None = None
        self.metadata_unavailable = False
        self.metadata_retry_at = 0.0
        self.supervisor_seen = time.monotonic()
        self._own_gap = LoopGap(OWN_GAP_S)
        # D25: PostgreSQL down is an outage, not an exit: quotes pulled, must-ack
        # messages kept unacknowledged in order, fills kept until committed.
        self.outage = Outage("PostgreSQL", symbol, pull=self._pull_quotes)
        self.deferred: list[protocol.DataFrame] = []
        self.unrecorded_fills: set[str] = set()
        self.trader: SymbolTrader
        self.execution: OrderExecution | None = None
        self.shadow_quotes: ShadowQuotes | None = None
        self.kill: KillSwitch
        self.commands: CommandHandler
        self.edge: Edge

    # ----------------------------------------------------------------- start

    def start(self) -> None:
        """Take the lease, load from PostgreSQL, learn the instrument, connect, say hello.

        Started during a PostgreSQL outage, it waits with backoff instead of exiting
        (a crash loop is for bugs, D25): quoting nothing, heard by its supervisor,
        its live status saying what it waits for; then it carries on as any start.
        """
        try:
            lease = self._until_database(lambda: take_lease(self.keeper, LEASE_WAIT_S), "lease")
        except LeaseHeld as held:  # refused, never crash-looped (D27)
            raise SystemExit(f"refusing to start: {held} (D26)") from None
        # D29: a process start gives PAUSED; a takeover keeps the recorded state
        # only for a symbol moved here from another host, or handed back (D28).
        moved = moved_here(
            lease.takeover,
            lease.previous_owner,
            self.settings.host_id,
            handed_back=self.handed_back,
        )
        kind = "moved here" if moved else "takeover" if lease.takeover else "cold start"
        log.info(
            "lease taken",
            extra={
                "symbol": self.symbol,
                "detail": f"epoch {lease.epoch} ({kind}, previous owner {lease.previous_owner})",
            },
        )
        config = self._until_database(self.store.load_config, "config")
        if config is None:
            raise SystemExit(f"{self.symbol}: no config row")
        state, triggers = self._until_database(
            lambda: self.store.restart_state(keep=moved), "state"
        )
        limits = service_limits(self.settings)
        self.trader = SymbolTrader(config, limits, state, triggers=triggers)
        for order in self._until_database(self.store.live_orders, "orders"):
            self.trader.orders[order.client_order_id] = order  # exposure survives restarts (D31)
        self._until_database(self._load_instrument, "instrument")
        if self.shadow:  # D18: no Order Service call at all, simulated quotes instead
            publisher = KafkaPublisher(producer_config(connection_config(self.settings)))
            self.shadow_quotes = ShadowQuotes(self.codec, publisher)
        else:
            self.execution = OrderExecution(
                OrderServiceClient.from_settings(self.settings),
                self.store,
                self.trader,
                TokenBucket(limits.max_orders_per_second, now_ms()),
                now_ms,
                reconcile_interval_ms=int(self.settings.reconcile_interval_s * 1000),
                on_database_down=self.outage.down,
            )
            # Whatever rested before this start is uncertain, and a new owner cancels
            # the old epoch's open orders before its first place (D32).
            self.execution.start_flatten()
        self.wire()
        self._connect()

    def _until_database(self, step: Callable[[], T], what: str) -> T:
        """``step`` once PostgreSQL answers; meanwhile the waiting worker's pauses (D25)."""
        return until_database_answers(step, what=what, idle=self._wait, symbol=self.symbol)

    def _wait(self, seconds: float) -> bool:
        """One back-off pause of a start waiting for PostgreSQL; False once told to stop.

        Nothing is quoted (no order is sent before the lease and state are loaded);
        heartbeats keep the supervisor's silence rule from killing a worker that
        is only waiting, and the live status in Redis says what it waits for.
        """
        self._connect_control()  # heard by the supervisor while it waits (D25, D27)
        self.status.publish(self.symbol, self._waiting_status(), ttl_s=10.0)
        ends = time.monotonic() + seconds
        next_beat = 0.0
        while self.running:
            mono = time.monotonic()
            if mono >= ends:
                break
            if mono >= next_beat:
                self.send(protocol.Heartbeat())
                next_beat = mono + WAITING_BEAT_S
                self._check_supervisor(mono)
            wait_ms = max(1, int(1000 * min(ends, next_beat) - 1000 * mono))
            if self.control.poll(wait_ms):
                self._answer_while_waiting()
        return self.running

    def _waiting_status(self) -> dict[str, Any]:
        """The live status of a worker that has no state yet: waiting for PostgreSQL."""
        return {
            "symbol": self.symbol,
            "state": None,
            "triggers": [],
            "open_orders": 0,
            "shadow": self.shadow,
            "waiting_for": "PostgreSQL",
        }

    def _answer_while_waiting(self) -> None:
        """Heartbeats keep the supervisor seen; a command is answered 503 (no state yet)."""
        for message in self._control_messages():
            if isinstance(message, protocol.WorkerCommand):
                error = {"code": "DATABASE_UNAVAILABLE", "message": "waiting for PostgreSQL"}
                self.send(protocol.Reply(message.id, 503, {"error": error}))

    def wire(self) -> None:
        """Give the kill switch, the command handler and the edge their collaborators."""
        self.kill = KillSwitch(
            self.trader, self.store, self.execution, clock_ms=now_ms, on_change=self.publish_status
        )
        self.store.before_write = self.kill.require_recorded  # a kill is recorded first (D25)
        self.edge = Edge(  # D24: wire rules and the dead-letter hold
            self.symbol,
            self.settings.system_account_id,
            self.trader,
            FencedSessions(make_session_factory(self.engine), self.keeper),
            market_moved=self.market_moved,
            pause=self._pause_for,
            reapply=self._on_data,
        )
        self.commands = CommandHandler(
            self.trader,
            self.store,
            self.kill,
            self.execution,
            self,
            clock_ms=now_ms,
            dead_letters=self.edge,
        )

    def _pause_for(self, reason: str) -> None:
        self.commands.pause({"reason": reason}, "system")  # records PAUSED, flattens

    def _load_instrument(self) -> None:
        """Tick and lot from the Metadata Service; unknown waits for created (D4).

        While the service is unreachable the loop asks again every few seconds.
        """
        self.metadata_retry_at = time.monotonic() + METADATA_RETRY_S
        asked = now_ms()  # the answer reflects every lifecycle event stamped before this
        try:
            with MetadataClient(self.settings.metadata_service_grpc_url) as metadata:
                instrument = metadata.get_instrument(self.symbol)
        except MetadataError:
            log.warning(
                "metadata unavailable; will retry (md.instrument.* also teaches the instrument)",
                extra={"symbol": self.symbol},
            )
            self.metadata_unavailable = True
            return
        self.metadata_unavailable = False
        if instrument is not None:
            self.attach_instrument(instrument, asked, from_metadata=True)

    def attach_instrument(
        self, instrument: Instrument, as_of_ms: int, *, from_metadata: bool = False
    ) -> None:
        first = self.trader.inventory is None
        self.trader.on_instrument(instrument, as_of_ms, from_metadata=from_metadata)
        if first:
            inventory, self.trader.fees_paid = self.store.rebuild_inventory(instrument.base_asset)
            self.trader.inventory = inventory

    def _connect_control(self) -> None:
        """The control socket, under the symbol's identity, once.

        Connected only when needed (a wait for PostgreSQL at start, or HELLO): the
        supervisor's ROUTER hands the identity over to the newest connection
        (ROUTER_HANDOVER, so that a restarted worker is reached at once), and a
        duplicate started by hand that connected before being refused its lease
        would take the real worker's heartbeats away: it then exited "supervisor
        lost" (found by a fresh-clone run of test_ownership).
        """
        if self._control_connected:
            return
        self._control_connected = True
        self.control = self.ctx.socket(zmq.DEALER)
        self.control.setsockopt(zmq.IDENTITY, self.symbol.encode())
        self.control.setsockopt(zmq.LINGER, 0)
        self.control.connect(protocol.worker_control_endpoint(self.settings.worker_endpoint_dir))

    def _connect(self) -> None:
        """The data socket, then HELLO: the supervisor sends data and commands from now on."""
        self._connect_control()
        self.data = self.ctx.socket(zmq.PULL)
        self.data.setsockopt(zmq.RCVHWM, 1000)
        self.data.setsockopt(zmq.LINGER, 0)
        self.data.connect(protocol.data_endpoint(self.settings.worker_endpoint_dir, self.symbol))
        self.send(protocol.Hello(os.getpid()))
        # The silence rule counts from HELLO: a start-up slowed by load (lease, config,
        # Metadata) is no silence of the supervisor, which cannot talk to us before.
        self.supervisor_seen = time.monotonic()

    def send(self, message: protocol.Message) -> None:
        self.control.send(protocol.encode(message))
        self.keepalive.sent()  # any frame tells the supervisor we live

    # ------------------------------------------------------------------ loop

    def run(self) -> None:
        """Serve sockets and timers until stopped; any lost dependency ends in cancels."""
        poller = zmq.Poller()
        poller.register(self.data, zmq.POLLIN)
        poller.register(self.control, zmq.POLLIN)
        while self.running:
            events = dict(poller.poll(self._poll_timeout_ms()))
            if self.control in events:
                self._drain_control()
            if self.data in events:
                self._drain_data()
            with self.outage.guard():
                self._after_io()
            mono = time.monotonic()
            self._check_supervisor(mono)
            if self.keepalive.due():
                self.send(protocol.Heartbeat())
            if self.status_cadence.due(status_key(self.trader)):
                self.publish_status()
            if self.outage.active:
                self.outage.retry(self._recover)  # the lease is re-taken there (D25)
                continue
            with self.outage.guard():
                self._check_fence()  # about every second (D26, D30, D31)
                if self.metadata_unavailable and mono >= self.metadata_retry_at:
                    self._load_instrument()

    def _poll_timeout_ms(self) -> int:
        """Sleep until the next decision or timer is due (issue 13), 1 ms while orders fly."""
        busy = self.execution is not None and (self.execution.busy or self.execution.flattening)
        if busy:
            return 1
        interval, now = self.trader.config.quote_interval_ms, now_ms()
        due = self.last_decision_ms + interval
        if self.market_dirty:
            due = min(due, self.last_action_ms + interval)
        timers = min(self.keepalive.next_due(), self.status_cadence.next_due())
        if not self.outage.active:  # during an outage the lease waits for the outage's retry
            timers = min(timers, self.keeper.next_renewal)
        return max(1, min(due - now, sleep_ms(time.monotonic(), timers)))

    def _drain_data(self) -> None:
        acks: list[tuple[str, int, int]] = []
        for _ in range(500):
            try:
                frames = self.data.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                break
            try:
                frame = protocol.unpack_data(frames)
            except protocol.ProtocolError as exc:  # D24: counted and skipped, never a crash
                metrics.decode_error(f"zmq_data_{exc.reason}")
                log.warning("malformed data frame skipped", extra={"symbol": self.symbol})
                continue
            if frame.must_ack and (self.deferred or self.outage.active):
                self.deferred.append(frame)  # behind the held ones, in order (D1, D25)
                continue
            try:
                self._on_data(frame)
            except Exception as exc:
                if not database_down(exc):
                    raise
                self.outage.down(exc)  # retried once PostgreSQL answers, never acked (D31)
                if frame.must_ack:
                    self.deferred.append(frame)
                continue
            if frame.must_ack:
                acks.append((frame.topic, frame.partition, frame.offset))
        if acks:
            self.send(protocol.Ack(tuple(acks)))

    def _on_data(self, frame: protocol.DataFrame) -> None:
        try:
            record = self.codec.decode(frame.topic, frame.value)
        except DecodeError:
            metrics.decode_error(frame.topic)
            log.warning(
                "undecodable message skipped",
                extra={"symbol": self.symbol, "topic": frame.topic, "offset": frame.offset},
            )
            return
        if not self.edge.admit(frame, record):
            return  # refused: counted, logged, book unknown or dead-lettered (D24)
        handler = _HANDLERS.get(frame.topic)
        ordered = _SENT_ORDERED.get(frame.topic)
        if handler is None and ordered is None:
            return
        try:
            if ordered is not None:
                ordered(self, record, frame.ts_ms)
            elif handler is not None:
                handler(self, record)
        except (ValueError, ArithmeticError, KeyError, TypeError, DataError, IntegrityError) as exc:
            # Content the wire rules let through and the core or PostgreSQL refused: one
            # bad message costs one message; crashing would replay it forever (D24).
            self.edge.failed(frame, exc)

    def on_snapshot(self, record: dict[str, Any]) -> None:
        self.trader.on_snapshot(record)
        self.market_moved()

    def on_delta(self, record: dict[str, Any]) -> None:
        self.trader.on_delta(record)
        self.market_moved()

    def on_mark(self, record: dict[str, Any]) -> None:
        self.trader.on_mark(record)

    def on_trade(self, record: dict[str, Any]) -> None:
        """Trades carry no state the quote needs beyond the book; kept for observability."""

    # Lifecycle events apply in the order the exchange sent them, never dropped by
    # comparing clocks with the Metadata answer: in doubt, halted (D23, D31).

    def on_instrument(self, record: dict[str, Any]) -> None:
        self.attach_instrument(instrument_from_record(record), int(record["ts_ms"]))
        self.market_moved()

    def on_halt(self, record: dict[str, Any], sent_ms: int) -> None:
        self.trader.exchange_halt(int(record["ts_ms"]), sent_ms)
        self.market_moved(force=True)

    def on_resume(self, record: dict[str, Any], sent_ms: int) -> None:
        self.trader.exchange_resume(int(record["ts_ms"]), sent_ms)  # a reset stays manual

    def on_engine_event(self, record: dict[str, Any]) -> None:
        """Our account's order events; a fill is committed before it is acknowledged (D1)."""
        if record.get("account_id") != self.settings.system_account_id:
            return  # the supervisor's peek is cheap; this is the exact check (D14)
        if record["event_type"] == "FILL":
            self._on_fill(record)
            return
        cid, kind = record["client_order_id"], record["event_type"]
        known = self.trader.orders.get(cid)
        status = self.trader.on_order_event(record)
        if kind == "REJECTED" and known is not None:
            self._on_rejected_event(cid, known.side, record.get("reason"))
        self._store_event(cid, record)
        if kind == "ACCEPTED" and self.execution is not None:
            if status is None:
                self.execution.reconcile_now()  # not an order this worker holds: look (D22)
            elif self.trader.state is not SymbolState.ACTIVE:
                self.execution.chase(record["order_id"], cid)  # late accept: cancel (D22)

    def _on_rejected_event(self, cid: str, side: Side, reason: str | None) -> None:
        """An order of this worker not yet counted through its 4xx (D10); a reject of an
        order we never placed here is replayed history (D15). A post-only cross holds
        that side until the next book message and is no reject storm (D23)."""
        if reason == POST_ONLY_WOULD_CROSS:
            self.trader.holds.after_cross(side)
            return
        log.warning(
            "order rejected",
            extra={"symbol": self.symbol, "client_order_id": cid, "code": reason},
        )
        metrics.order_rejected(self.symbol)
        self.kill.consider(self.trader.rejects.record(cid, now_ms()))

    def _store_event(self, cid: str, record: dict[str, Any]) -> None:
        try:
            status = EVENT_STATUS[record["event_type"]].value
            self.store.order_status(
                cid,
                status,
                order_id=record["order_id"],
                reason=record.get("reason"),
                final_event=record["event_type"] in FINAL_EVENTS,
            )
        except ValueError:
            pass  # a client_order_id that is not one of our UUIDs: nothing to update

    def _on_fill(self, record: dict[str, Any]) -> None:
        fill = fill_from_event(record)
        if self.trader.inventory is None:
            # The instrument is not known yet: keep the fill; the inventory is
            # rebuilt from the fill rows when it is (D1: never dropped).
            self.store.record_fill(fill, record, None, self.trader.fees_paid)
            log.warning(
                "fill recorded before the instrument is known", extra={"symbol": self.symbol}
            )
            return
        remaining = Decimal(record["remaining_quantity"])
        inventory = self.trader.inventory
        if self.trader.on_fill(fill, record["client_order_id"], remaining):
            self.trader.fees_paid += inventory.fee_in_quote(fill)
            self.unrecorded_fills.add(fill.event_id)
        elif fill.event_id not in self.unrecorded_fills:
            return  # seen and committed before (a replay: D1)
        # A fill whose commit met a PostgreSQL outage is retried (never acknowledged
        # meanwhile, D31); record_fill is idempotent by event_id.
        self.store.record_fill(fill, record, inventory, self.trader.fees_paid)
        self.unrecorded_fills.discard(fill.event_id)
        self.trader.holds.after_fill(fill.ts_ms, now_ms())
        self.market_moved(force=True)

    # ------------------------------------------------------------- decisions

    def market_moved(self, force: bool = False) -> None:
        """Requote on a market change now, unless the last acting requote is too recent (D13)."""
        self.market_dirty = True
        now = now_ms()
        if force or self._spaced(now):
            self.requote(now)

    def _spaced(self, now: int) -> bool:
        return now - self.last_action_ms >= self.trader.config.quote_interval_ms

    def _after_io(self) -> None:
        self.kill.retry()
        if self.execution is not None:
            self._poll_execution(self.execution)
        now = now_ms()
        timer_due = now - self.last_decision_ms >= self.trader.config.quote_interval_ms
        if timer_due or (self.market_dirty and self._spaced(now)):
            self.requote(now)

    def _poll_execution(self, execution: OrderExecution) -> None:
        outcome = execution.poll()
        if outcome is not None:
            for elapsed in outcome.placed_latencies:
                metrics.observe_order_latency(elapsed)
            for _ in range(outcome.rejects):
                metrics.order_rejected(self.symbol)
            for side in outcome.crossed:
                self.trader.holds.after_cross(side)  # D23: our book is behind on that side
            if outcome.kill is not None:
                self.kill.fire(outcome.kill, actor="system")
            elif outcome.uncertain is not None:
                log.error(
                    "uncertain order state; pulling quotes",
                    extra={"symbol": self.symbol, "detail": outcome.uncertain},
                )
                execution.start_flatten()
        if execution.poll_flatten() is False:
            execution.start_flatten()
        execution.housekeep()

    def requote(self, now: int) -> None:
        """One decision of the core, acted on: kill, pull, or the minimal diff.

        A PostgreSQL outage met on the way (a PENDING row, a stale episode) ends
        the decision and starts the outage's hold (D25).
        """
        with self.outage.guard():
            self._requote(now)

    def _requote(self, now: int) -> None:
        self.last_decision_ms, self.market_dirty = now, False
        inputs = self.trader.decision_inputs(now)
        if inputs is not None and inputs == self.quiet_inputs:
            return  # nothing a decision reads has changed since one with nothing to do
        self.quiet_inputs = None
        with tick_span(self.symbol), span("mm.quote"):
            started = time.perf_counter()
            decision = self.trader.decide(now)
            metrics.observe_quote_latency(time.perf_counter() - started)
        if decision is None:
            return
        if decision.kill is not None:
            self.kill.fire(decision.kill, actor="system")
            return
        if self.outage.active:
            return  # quotes stay pulled until PostgreSQL answers (D25)
        self.kill.observe_staleness(decision)
        if self.shadow_quotes is not None:
            if self.shadow_quotes.publish(decision.quote):
                self.last_action_ms = now
            return
        if self.execution is None or self.execution.busy or self.execution.flattening:
            self.market_dirty = True  # decide again once the batch in flight is answered
            return
        if not (decision.cancel or decision.place or decision.stale):
            self.quiet_inputs = inputs  # its quote rests as wanted, or nothing is to rest
        top = self.trader.book.top()
        places, held = self.trader.holds.allowed(
            decision.place, None if top is None else top.ts_ms, now
        )
        if places and not self.keeper.may_place():
            places, held = (), True  # D32: no place after the lease's local deadline
        if held:
            decision = replace(decision, place=places)  # cancels go; places wait (D23)
            self.market_dirty = True
        with span("mm.order_request"):
            if self.execution.submit(decision) and not held:
                self.last_action_ms = now

    # -------------------------------------------------------- health, status

    def _control_messages(self) -> Iterator[protocol.ToWorker]:
        """The control frames waiting now, parsed; any frame proves the supervisor lives.
        A bad one is counted, logged and skipped, never a crash (D24)."""
        while self.control.poll(0):
            try:
                message = protocol.parse_to_worker(
                    protocol.single_frame(self.control.recv_multipart())
                )
            except protocol.ProtocolError as exc:
                metrics.decode_error(f"zmq_control_{exc.reason}")
                log.warning(
                    "control frame refused", extra={"symbol": self.symbol, "reason": str(exc)}
                )
                continue
            self.supervisor_seen = time.monotonic()
            yield message

    def _drain_control(self) -> None:
        for message in self._control_messages():
            if isinstance(message, protocol.WorkerCommand):
                try:
                    status, body = self.commands.handle(message)
                except Exception as exc:
                    if database_down(exc):  # a kill never gets here: it acts in memory (D25)
                        status, body = self._database_unavailable(exc)
                    else:
                        log.exception("command failed", extra={"symbol": self.symbol})
                        error = {"code": "INTERNAL", "message": "command failed"}
                        status, body = 500, {"error": error}
                self.send(protocol.Reply(message.id, status, body))

    def _database_unavailable(self, exc: Exception) -> tuple[int, dict[str, Any]]:
        self.outage.down(exc)
        message = "PostgreSQL is unreachable; retry later"
        return 503, {"error": {"code": "DATABASE_UNAVAILABLE", "message": message}}

    def _check_supervisor(self, mono: float) -> None:
        if self._own_gap.stalled(mono):  # our own stall is not the supervisor's silence
            # Named in the log: a stall this long also delays the lease's renewal (D26).
            log.warning(
                "worker loop stalled",
                extra={"symbol": self.symbol, "stalled_s": round(self._own_gap.last_s, 3)},
            )
            self.supervisor_seen = mono
        if mono - self.supervisor_seen > SUPERVISOR_SILENT_S:
            log.critical("supervisor lost; canceling and exiting", extra={"symbol": self.symbol})
            self.stop(EXIT_LOST_SUPERVISOR)

    def _check_fence(self) -> None:
        """Renew the lease when due; a kill it reports acts in memory at once (D26, D30)."""
        if not self.keeper.renewal_due():
            return
        try:
            renewal = self.keeper.renew()
        except Fenced as fenced:
            self.fence_lost(fenced)
            return
        self._adopt_recorded(renewal)
        self.edge.on_renewal(renewal.dead_letters, renewal.replays_pending)  # D31's hold

    def _adopt_recorded(self, renewal: Renewal) -> None:
        """Take up a kill recorded straight in PostgreSQL (admin, supervisor: D30), and,
        after an outage, a pause: the symbol carries on in the state recorded (D25)."""
        recorded = renewal.state
        if recorded is not None and recorded.state is db.SymbolState.HALTED:
            trigger = recorded.trigger
            self.kill.adopt(
                SymbolState.HALTED, [] if trigger is None else [RiskTrigger(trigger.value)]
            )
        elif renewal.kill.active and self.trader.state is SymbolState.ACTIVE:
            flag = renewal.kill
            trigger = RiskTrigger(flag.trigger.value) if flag.trigger else RiskTrigger.MANUAL
            self.kill.fire(KillDecision(trigger, flag.reason), actor=flag.actor, global_kill=True)
        elif (
            recorded is not None
            and recorded.state is db.SymbolState.PAUSED
            and self.trader.state is SymbolState.ACTIVE
        ):
            self.trader.enter(machine.pause(self.trader.state))
            self._pull_quotes()

    # ------------------------------------------------------------- outages

    def _pull_quotes(self) -> None:
        """Cancel until flat while the Order Service answers; nothing placed meanwhile (D25)."""
        if self.execution is not None:
            self.execution.start_flatten()
        self.market_dirty = True

    def _recover(self) -> None:
        """PostgreSQL answers: the kill first, then the lease, the writes it missed, the
        held messages, then the state it records (D25, D26, D30). Raises while it is still
        down (the outage retries later) and Fenced when another owner took the symbol
        meanwhile (we stand down)."""
        self.kill.require_recorded()  # before anything else is written (D25)
        self.keeper.in_doubt = True  # our epoch may have expired unseen: re-take it
        renewal = self.keeper.renew()
        if self.execution is not None:
            self.execution.flush_unwritten()
        self._replay_deferred()
        for order in self.store.live_orders():
            # A PENDING row whose commit answer the outage swallowed: UNKNOWN, settled
            # by the venue's listing (absent for VENUE_HOLD_MAX: never came alive, D31).
            self.trader.orders.setdefault(order.client_order_id, order)
        self._adopt_recorded(renewal)
        self.edge.on_renewal(renewal.dead_letters, renewal.replays_pending)
        if self.execution is not None:
            self.execution.reconcile_now()  # D22: what rests at the venue now

    def _replay_deferred(self) -> None:
        """Apply the must-ack messages held during the outage, in order, then ack them."""
        acks: list[tuple[str, int, int]] = []
        try:
            while self.deferred:
                frame = self.deferred[0]
                self._on_data(frame)  # raises while PostgreSQL is down: kept for later
                self.deferred.pop(0)
                acks.append((frame.topic, frame.partition, frame.offset))
        finally:
            if acks:
                self.send(protocol.Ack(tuple(acks)))

    def fence_lost(self, fenced: Fenced) -> None:
        """Fenced out: no more places or writes (but kills); cancel our own ids and exit (D32)."""
        log.critical(
            "lease lost; canceling our own orders and exiting",
            extra={"symbol": self.symbol, "detail": str(fenced)},
        )
        self.fenced = True
        self.keeper.lost()
        self.stop(EXIT_FENCED)

    def live_status(self) -> dict[str, Any]:
        """The live status as JSON values."""
        return live_status(self.trader, shadow=self.shadow)

    def publish_status(self) -> None:
        """Live status to Redis and the symbol's gauges (unchanged ones cost nothing)."""
        status = self.live_status()
        self.status.publish(self.symbol, status, ttl_s=STATUS_TTL_S)
        self.status_cadence.written(status_key(self.trader))
        quote = status["last_quote"]
        metrics.observe_worker(
            self.symbol,
            state=status["state"],
            inventory_usdt=float(status["position_usdt"]),
            open_orders=status["open_orders"],
            spread_bps=float(quote["spread_bps"]) if quote and status["state"] == "ACTIVE" else 0.0,
            realized_pnl_usdt=float(status["realized_pnl_usdt"]),
            unrealized_pnl_usdt=float(status["unrealized_pnl_usdt"]),
        )

    def stop(self, code: int = 0) -> None:
        self.running = False
        self.exit_code = code

    def _answer_in_flight(self, execution: OrderExecution) -> None:
        """Wait for the batch in flight, at most its budget plus VENUE_HOLD_MAX (D32).

        Its places then rest where the cancels below find them, and the lease is
        not released while one of them may still land.
        """
        ends = time.monotonic() + self.settings.kill_switch_response_timeout_s + VENUE_HOLD_MAX_S
        while execution.busy and time.monotonic() < ends:
            try:
                execution.poll()  # the answers are recorded (fenced) as in the loop
            except (Fenced, SQLAlchemyError) as exc:
                log.warning(
                    "in-flight answers not recorded at stop",
                    extra={"symbol": self.symbol, "detail": str(exc)},
                )
                return
            time.sleep(0.005)

    def shutdown(self) -> None:
        """Cancel the symbol's orders, then release the lease (SIGTERM, lost dependency).

        Fenced out, only our own order ids are canceled: the symbol's orders
        now belong to the new owner (D32). The lease is released only after
        the in-flight batch is over (the cancel-all outlasts its budget).
        """
        if self.execution is not None:
            self._answer_in_flight(self.execution)
            # A cancel-all never marks rows CANCELED: their engine events will (D22).
            client = OrderServiceClient.from_settings(self.settings)
            if self.fenced:
                own = self.trader.orders.values()
                cancel_own(
                    client,
                    self.symbol,
                    [o.client_order_id for o in own],
                    [o.order_id for o in own if o.order_id is not None],
                )
            else:
                client.cancel_until_flat(self.symbol, deadline_s=5.0)
            client.close()
            self.execution.close()
        if hasattr(self, "kill"):
            self.kill.record_before_exit()  # never exit with a kill unrecorded (D25, D30)
        if not self.fenced:
            with contextlib.suppress(SQLAlchemyError):  # expires by itself otherwise
                self.keeper.release()
        self.ctx.destroy(linger=0)
        self.engine.dispose()


_HANDLERS = {
    topics.ORDERBOOK_SNAPSHOT: Worker.on_snapshot,
    topics.ORDERBOOK_DELTA: Worker.on_delta,
    topics.TRADES: Worker.on_trade,
    topics.MARK: Worker.on_mark,
    topics.ENGINE_EVENTS: Worker.on_engine_event,
    topics.INSTRUMENT_CREATED: Worker.on_instrument,
    topics.INSTRUMENT_UPDATED: Worker.on_instrument,
}
# Halts and resumes also take the Kafka record's send time: it orders a pair stamped
# in the same millisecond, which a new group's replay delivers in any order (D31).
_SENT_ORDERED = {
    topics.INSTRUMENT_HALT: Worker.on_halt,
    topics.INSTRUMENT_RESUME: Worker.on_resume,
}


def main(argv: list[str] | None = None) -> None:
    """Console script ``mmsvc-worker --symbol SYMBOL`` (started by the supervisor)."""
    parser = argparse.ArgumentParser(prog="mmsvc-worker")
    parser.add_argument("--symbol", required=True)
    parser.add_argument(
        HANDED_BACK_ARG,
        action="store_true",
        help="the group gave the symbol back to the supervisor that handed it over (D28)",
    )
    args = parser.parse_args(argv)
    settings = bootstrap("worker", symbol=args.symbol)
    sys.setswitchinterval(GIL_SWITCH_S)
    die_with_parent(signal.SIGTERM)
    worker = Worker(settings, args.symbol, handed_back=args.handed_back)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop(0))
    signal.signal(signal.SIGINT, lambda *_: worker.stop(0))
    try:
        worker.start()
        worker.run()
    except Fenced as fenced:  # a write refused by the epoch (D26)
        worker.fence_lost(fenced)
    except StoppedWaitingError:  # SIGTERM or a lost supervisor while PostgreSQL was down
        log.info("stopped while waiting for PostgreSQL", extra={"symbol": args.symbol})
    except SQLAlchemyError:
        log.exception("database lost; canceling and exiting", extra={"symbol": args.symbol})
        worker.exit_code = EXIT_LOST_DATABASE
    finally:
        worker.shutdown()
    sys.exit(worker.exit_code)
