"""The kill switch of one symbol, as the spec's Kill Switch Flow orders it.

HALTED first in memory (so nothing more is placed), then the state and its
risk event in one transaction (ARCHITECTURE D7, D16), then cancel-all until the
Order Service confirms nothing is open. A symbol already HALTED keeps its first
trigger. Stale data is not a kill: it pulls quotes and publishes one STALE_DATA
event per episode.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from mmsvc.adapters import metrics
from mmsvc.adapters.kafka.events import now_ms
from mmsvc.domain.engine import QuoteDecision
from mmsvc.domain.model import KillDecision, SymbolState

if TYPE_CHECKING:
    from mmsvc.processes.worker.main import Worker

log = logging.getLogger("mmsvc.worker.kill")


class KillSwitch:
    """Fires a symbol's kill switch exactly once per HALTED episode."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker

    def consider(self, kill: KillDecision | None) -> None:
        if kill is not None:
            self.fire(kill, actor="system")

    def fire(self, kill: KillDecision, *, actor: str, global_kill: bool = False) -> bool:
        """HALT, record, cancel; False when the symbol was already HALTED."""
        worker, trader = self._worker, self._worker.trader
        if worker.execution is not None:
            worker.execution.start_flatten()
        if trader.state is SymbolState.HALTED:
            return False
        trader.state = SymbolState.HALTED
        trader.triggers = [kill.trigger]
        position, pnl = trader.position_and_pnl(now_ms())
        worker.store.halt(kill, actor=actor, position=position, pnl=pnl, publish=not global_kill)
        metrics.kill_switch_fired(trader.symbol, kill.trigger.value)
        log.critical(
            "kill switch fired",
            extra={"symbol": trader.symbol, "trigger": kill.trigger.value, "detail": kill.detail},
        )
        worker.publish_status()
        return True

    def observe_staleness(self, decision: QuoteDecision) -> None:
        """One STALE_DATA risk event when an episode of stale data starts (D7)."""
        trader = self._worker.trader
        started = trader.stale.observe(decision.pulled if decision.stale else None)
        if started is not None:
            position, pnl = trader.position_and_pnl(now_ms())
            self._worker.store.stale_episode(started.detail, position, pnl)
            log.warning(
                "market data stale; quotes pulled",
                extra={"symbol": trader.symbol, "detail": started.detail},
            )
