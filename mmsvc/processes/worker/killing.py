"""The kill switch of one symbol: the one place that halts trading in a worker.

The spec's Kill Switch Flow, as ARCHITECTURE D7, D22, D25 and D30 settle it:
HALTED first in memory (so nothing more is placed) through the core's state
machine, cancel until the venue lists nothing open, and record the state with
its risk event in one transaction (D16). A kill always lands: when PostgreSQL
cannot record it, the worker stays HALTED in memory and records it the moment
PostgreSQL answers, before anything else is written (``require_recorded`` is
the store's guard), and never exits with it unrecorded. A kill recorded by
someone else straight in PostgreSQL is taken up with ``adopt``. A symbol
already HALTED keeps its first trigger. Stale data is not a kill: it pulls
quotes and publishes one STALE_DATA event per episode.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy.exc import SQLAlchemyError

from mmsvc.adapters import metrics
from mmsvc.adapters.db.engine import database_down
from mmsvc.domain import state as machine
from mmsvc.domain.engine import QuoteDecision
from mmsvc.domain.model import KillDecision, RiskTrigger, SymbolState
from mmsvc.domain.ports import Flattener, StateStore
from mmsvc.domain.trader import SymbolTrader

log = logging.getLogger("mmsvc.worker.kill")

RECORD_RETRY_MAX_S = 1.0


@dataclass(frozen=True, slots=True)
class _Unrecorded:
    kill: KillDecision
    actor: str
    publish: bool


class KillSwitch:
    """Fires a symbol's kill switch exactly once per HALTED episode, and makes it land."""

    def __init__(
        self,
        trader: SymbolTrader,
        store: StateStore,
        flattener: Flattener | None,
        *,
        clock_ms: Callable[[], int],
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self._trader = trader
        self._store = store
        self._flattener = flattener
        self._clock_ms = clock_ms
        self._on_change = on_change
        self._unrecorded: _Unrecorded | None = None
        self._retry_at_ms = 0
        self._retry_delay_ms = 50

    @property
    def unrecorded(self) -> KillDecision | None:
        """The kill that acts in memory but is not yet in PostgreSQL, if any."""
        return None if self._unrecorded is None else self._unrecorded.kill

    def consider(self, kill: KillDecision | None) -> None:
        if kill is not None:
            self.fire(kill, actor="system")

    def fire(self, kill: KillDecision, *, actor: str, global_kill: bool = False) -> bool:
        """HALT, cancel, record; False when the symbol was already HALTED."""
        trader = self._trader
        if self._flattener is not None:
            self._flattener.start_flatten()
        if trader.state is SymbolState.HALTED:
            return False
        trader.enter(machine.kill(trader.state, kill.trigger.value), triggers=[kill.trigger])
        self._unrecorded = _Unrecorded(kill, actor, publish=not global_kill)
        self.flush()
        metrics.kill_switch_fired(trader.symbol, kill.trigger.value)
        log.critical(
            "kill switch fired",
            extra={"symbol": trader.symbol, "trigger": kill.trigger.value, "detail": kill.detail},
        )
        self._on_change()
        return True

    def adopt(self, state: SymbolState, triggers: list[RiskTrigger]) -> bool:
        """Take up a HALTED state recorded by someone else (admin, supervisor: D23, D30)."""
        trader = self._trader
        if state is not SymbolState.HALTED or trader.state is SymbolState.HALTED:
            return False
        if self._flattener is not None:
            self._flattener.start_flatten()
        detail = "recorded in PostgreSQL"
        trader.enter(machine.kill(trader.state, detail), triggers=triggers)
        log.critical("kill switch taken up from the database", extra={"symbol": trader.symbol})
        self._on_change()
        return True

    def flush(self) -> bool:
        """Record a kill not yet recorded; True when nothing is left unrecorded."""
        try:
            self.require_recorded()
        except SQLAlchemyError as exc:
            log.error(
                "kill not recorded yet (PostgreSQL); HALTED in memory, retrying",
                extra={"symbol": self._trader.symbol, "detail": str(exc).splitlines()[0][:200]},
                exc_info=not database_down(exc),  # an outage needs no stack trace (D25)
            )
            now = self._clock_ms()
            self._retry_at_ms = now + self._retry_delay_ms
            self._retry_delay_ms = min(self._retry_delay_ms * 2, int(RECORD_RETRY_MAX_S * 1000))
            return False
        self._retry_delay_ms = 50
        return True

    def retry(self) -> None:
        """On every loop turn: record a pending kill once its backoff has passed."""
        if self._unrecorded is not None and self._clock_ms() >= self._retry_at_ms:
            self.flush()

    def require_recorded(self) -> None:
        """Record a pending kill or raise: the guard before any other write (D25)."""
        pending = self._unrecorded
        if pending is None:
            return
        position, pnl = self._trader.position_and_pnl(self._clock_ms())
        self._store.halt(
            pending.kill,
            actor=pending.actor,
            position=Decimal(0) if position is None else position,
            pnl=Decimal(0) if pnl is None else pnl,
            publish=pending.publish,
        )
        self._unrecorded = None

    def record_before_exit(self, sleep: Callable[[float], None] = time.sleep) -> None:
        """Never exit with a kill unrecorded: retry with backoff until PostgreSQL answers."""
        delay = 0.05
        while not self.flush():
            sleep(delay)
            delay = min(delay * 2, RECORD_RETRY_MAX_S)

    def observe_staleness(self, decision: QuoteDecision) -> None:
        """One STALE_DATA risk event when an episode of stale data starts (D7)."""
        trader = self._trader
        started = trader.stale.observe(decision.pulled if decision.stale else None)
        if started is not None:
            position, pnl = trader.position_and_pnl(self._clock_ms())
            self._store.stale_episode(
                started.detail,
                Decimal(0) if position is None else position,
                Decimal(0) if pnl is None else pnl,
            )
            log.warning(
                "market data stale; quotes pulled",
                extra={"symbol": trader.symbol, "detail": started.detail},
            )
