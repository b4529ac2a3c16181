"""One supervisor among many: symbols follow the group's partitions (ARCHITECTURE D28, D29, D32).

N supervisors, one per host, share one ``KAFKA_GROUP_ID``. The group assigns
``engine.event.v1`` with the cooperative-sticky assignor and the consumer
follows with the same partition numbers of every other consumed topic
(`mmsvc.adapters.kafka.consumer`). Every topic has the same partition count
and every key is partitioned with murmur2, so a symbol's partition number
(`mmsvc.domain.partitioning`) names the one member that runs its worker.

* Start-up refuses consumed topics of unequal partition counts, with one log
  line and exit code 2: a symbol would otherwise sit in different members'
  partitions on different topics.
* Assignment starts the workers of the configured symbols in the gained
  numbers; each worker takes its lease (waiting for a live one to end) and
  comes up PAUSED, or in its recorded state when it moved here from another
  host, or was handed back to this supervisor after a revocation, within
  TAKEOVER_WINDOW (`mmsvc.domain.lease.moved_here`).
* Revocation (or a lost session) stops those workers inside the callback,
  before the partitions move: each cancels its orders and releases its lease;
  then the offsets they acknowledged are committed and the numbers let go.

A supervisor touches only the symbols it holds (D29): its start-up no longer
pauses or cancels the whole account.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from mmsvc.adapters.db.configs import ConfigRepository
from mmsvc.adapters.kafka import topics
from mmsvc.adapters.kafka.consumer import MarketConsumer
from mmsvc.config import Settings
from mmsvc.domain.partitioning import mismatched_counts, partition_of, symbols_in
from mmsvc.processes.supervisor.lag import LagTracker
from mmsvc.processes.supervisor.pool import WorkerPool
from mmsvc.processes.supervisor.requests import PendingRequest
from mmsvc.processes.supervisor.router import Router
from mmsvc.processes.supervisor.startup import record_new_symbols

log = logging.getLogger("mmsvc.supervisor.membership")

EXIT_TOPICS_MISMATCH = 2
STOP_GRACE_S = 10.0
FOLLOW_CONFIGS_S = 2.0
RETIRED_S = 60.0  # a retired symbol is not restarted from its config row for this long


class TopicsNotCopartitioned(SystemExit):
    """The consumed topics' partition counts differ or a topic is missing (D32): no start."""


def check_copartitioned(consumer: MarketConsumer) -> int:
    """The common partition count of every consumed topic; refuses to start otherwise (D32)."""
    counts = consumer.partition_counts(sorted(topics.CONSUMED))
    refusal = mismatched_counts(counts)
    if refusal is not None:
        log.critical("refusing to start: %s", refusal)
        raise TopicsNotCopartitioned(EXIT_TOPICS_MISMATCH)
    return next(iter(counts.values()))


def configured_symbols(sessions: sessionmaker[Session]) -> list[str]:
    with sessions() as session:
        return [config.symbol for config in ConfigRepository(session).list()]


class Membership:
    """The supervisor's share of the symbols; mixed into :class:`Supervisor` (owns the state)."""

    settings: Settings
    sessions: sessionmaker[Session]
    pool: WorkerPool
    router: Router
    lag: LagTracker
    last_seen: dict[str, float]
    connected: set[str]
    consumer: MarketConsumer | None
    partition_count: int = 0
    _next_follow: float = 0.0
    retired_at: dict[str, float]  # symbol -> monotonic time its config's deletion stopped it
    handed_over: set[str]  # symbols whose worker a revocation stopped (D28, D29)

    _spawn: Callable[..., None]  # the Supervisor's: binds the data socket, starts the process
    _commit: Callable[[], None]  # the Supervisor's: commits what workers acknowledged
    _answer: Callable[[bytes, str | None, tuple[int, dict[str, Any]]], None]  # AdminCommands'
    retire: Callable[[str], None]  # AdminCommands': stops a deleted symbol's worker for good
    pending: dict[str, PendingRequest]

    def _join_group(self, config: dict[str, Any]) -> MarketConsumer:
        """Subscribe as one member of the group, after checking co-partitioning (D28, D32)."""
        consumer = MarketConsumer(
            config,
            on_revoke=self._partitions_gone,
            on_broker_heard=self.lag.broker_heard,
            on_assigned=self._numbers_assigned,
            on_revoking=self._numbers_revoking,
        )
        try:
            self.partition_count = check_copartitioned(consumer)
        except TopicsNotCopartitioned:
            consumer.close()
            raise
        return consumer

    def holds(self, symbol: str) -> bool:
        """True when this supervisor holds the symbol's partition number (D28)."""
        if self.consumer is None or self.partition_count < 1:
            return False
        return partition_of(symbol, self.partition_count) in self.consumer.numbers

    def _numbers_assigned(self, numbers: list[int]) -> None:
        try:
            configured = configured_symbols(self.sessions)
        except SQLAlchemyError:  # D25: never out of the rebalance callback; retried below
            log.warning("configs unreadable at assignment: follow_configs starts them later")
            configured = []
        symbols = sorted(symbols_in(configured, numbers, self.partition_count))
        log.info(
            "partitions gained: starting their workers",
            extra={"detail": f"numbers {numbers}: {symbols}", "host": self.settings.host_id},
        )
        for symbol in symbols:
            if symbol not in self.pool.workers:
                self._spawn_held(symbol)
        self._answer_early_creates()

    def _spawn_held(self, symbol: str) -> None:
        """Start the worker of a symbol in our partitions.

        When a revocation of this same supervisor stopped its last worker, the symbol is
        handed back, not restarted: it went away through the group and came back with
        no process started in between, and it keeps its recorded state if its lease
        ended within TAKEOVER_WINDOW (D28, D29; ``mmsvc.domain.lease.moved_here``).
        """
        handed_back = symbol in self.handed_over
        self.handed_over.discard(symbol)
        self._spawn(symbol, handed_back=handed_back)

    def _answer_early_creates(self) -> None:
        """Configs created before the first assignment: started above, or held elsewhere."""
        for key, pending in list(self.pending.items()):
            symbol = key.removeprefix("spawn:")
            if key.startswith("spawn:") and symbol not in self.pool.workers:
                del self.pending[key]
                self._answer(pending.admin, pending.request_id, self.config_held_elsewhere(symbol))

    def config_held_elsewhere(self, symbol: str) -> tuple[int, dict[str, Any]]:
        """The answer to a config created here whose partition we do not hold (yet).

        Its state row is recorded PAUSED now, as start-up would (a new symbol
        never starts by itself); the member holding its partition starts its
        worker (follow_configs, or its next assignment).
        """
        try:
            record_new_symbols(self.sessions, shadow=self.settings.shadow_mode)
        except SQLAlchemyError:  # its owner's worker records it as it starts
            log.warning("new symbol's state not recorded here", extra={"symbol": symbol})
        return 202, {"symbol": symbol, "held_elsewhere": True}

    def follow_configs(self, now: float) -> None:
        """Follow configs created or deleted through another host's admin API (D28).

        Only the member that holds a symbol's partition runs it: it starts a
        new config's worker, and stops the worker of a deleted one, within
        FOLLOW_CONFIGS_S.
        """
        if self.consumer is None or now < self._next_follow:
            return
        self._next_follow = now + FOLLOW_CONFIGS_S
        try:
            configured = configured_symbols(self.sessions)
        except SQLAlchemyError:  # D25: PostgreSQL away is no reason to stop; next round
            log.warning("configs unreadable: workers not followed this round")
            return
        for symbol in sorted(set(self.pool.workers) - set(configured)):
            # Deleted through another host's admin, which found it idle (D4): stop it here.
            log.info("config deleted: stopping its worker", extra={"symbol": symbol})
            self.retire(symbol)
        held = symbols_in(configured, self.consumer.numbers, self.partition_count)
        for symbol in sorted(held - set(self.pool.workers)):
            if now - self.retired_at.get(symbol, -RETIRED_S) < RETIRED_S:
                continue  # being deleted: its row goes once the worker stopped
            log.info("config found in our partitions: starting it", extra={"symbol": symbol})
            self._spawn_held(symbol)

    def _numbers_revoking(self, numbers: list[int]) -> None:
        symbols = sorted(
            s for s in self.pool.workers if partition_of(s, self.partition_count) in numbers
        )
        log.info(
            "partitions revoked: stopping their workers before they move",
            extra={"detail": f"numbers {numbers}: {symbols}", "host": self.settings.host_id},
        )
        # Each worker cancels its orders and releases its lease on SIGTERM (D28, D32).
        self.pool.stop_many(symbols, STOP_GRACE_S)
        self.handed_over.update(symbols)
        for symbol in symbols:
            link = self.router.detach(symbol)
            if link is not None:
                link.push.close(linger=0)  # type: ignore[attr-defined]
            self.last_seen.pop(symbol, None)
            self.connected.discard(symbol)
        self._commit()  # what the stopped workers acknowledged, before the numbers move

    def _partitions_gone(self, partitions: list[tuple[str, int]]) -> None:
        self.router.tracker.forget(partitions)
        self.lag.forget(partitions)
