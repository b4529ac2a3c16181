"""Commands a worker takes from the supervisor, answered with an HTTP-like status.

Every transition goes through the core's state machine first (illegal ones
are 409 with the current state), then through the guarded transition of the
database layer, which reads the symbol's row under its lock (ARCHITECTURE D23,
D30): enable and resume apply only when the row is PAUSED and no kill flag is
set, and only a reset leaves HALTED. Only then does the change take effect in
memory. A refusal that finds the row HALTED takes the kill up at once. A reset
re-checks the symbol's triggers with facts (D9, D23).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mmsvc.adapters.zmq import protocol
from mmsvc.domain import state as machine
from mmsvc.domain.model import KillDecision, RiskTrigger, SymbolState
from mmsvc.domain.ports import DeadLetterHold, Flattener, StateStore, WorkerLoop
from mmsvc.domain.risk import ResetContext, reset_refusal
from mmsvc.domain.state import Command
from mmsvc.domain.trader import SymbolTrader
from mmsvc.processes.worker.killing import KillSwitch

Answer = tuple[int, dict[str, Any]]


def _conflict(code: str, message: str, state: SymbolState) -> Answer:
    return 409, {"error": {"code": code, "message": message}, "state": state.value}


class CommandHandler:
    """Dispatches one control command to its rule."""

    def __init__(
        self,
        trader: SymbolTrader,
        store: StateStore,
        kill: KillSwitch,
        flattener: Flattener | None,
        loop: WorkerLoop,
        *,
        clock_ms: Callable[[], int],
        dead_letters: DeadLetterHold | None = None,
    ) -> None:
        self._trader = trader
        self._dead_letters = dead_letters
        self._store = store
        self._kill = kill
        self._flattener = flattener
        self._loop = loop
        self._clock_ms = clock_ms
        self._handlers = {
            Command.ENABLE: self.enable,
            Command.RESUME: self.resume,
            Command.PAUSE: self.pause,
            Command.KILL: self.kill,
            Command.RESET: self.reset,
            Command.FLATTEN: self.flatten,
            Command.STATUS: self.status,
            Command.CONFIG_CHANGED: self.config_changed,
            Command.CONFIG_DELETED: self.config_deleted,
        }

    def handle(self, message: protocol.WorkerCommand) -> Answer:
        handler = self._handlers.get(message.cmd)
        if handler is None:
            return 400, {"error": {"code": "UNKNOWN_COMMAND", "message": message.cmd.value}}
        return handler(message.args, message.actor)

    def _state_body(self) -> dict[str, Any]:
        return {"symbol": self._trader.symbol, "state": self._trader.state.value}

    def _refused(self, refused: machine.TransitionRefusedError) -> Answer:
        """The stored row said no; a HALTED row is a kill this worker takes up now."""
        if refused.current is SymbolState.HALTED:
            self._kill.adopt(SymbolState.HALTED, self._store.recorded_state()[1])
        return _conflict("ILLEGAL_TRANSITION", refused.reason, self._trader.state)

    def enable(self, args: dict[str, Any], actor: str) -> Answer:
        return self._activate(Command.ENABLE, actor)

    def resume(self, args: dict[str, Any], actor: str) -> Answer:
        trader = self._trader
        if trader.state is SymbolState.PAUSED and not trader.config.enabled:
            return _conflict("NOT_ENABLED", "symbol is not enabled: use enable", trader.state)
        return self._activate(Command.RESUME, actor)

    def _activate(self, command: Command, actor: str) -> Answer:
        trader = self._trader
        transition = machine.apply(
            trader.state,
            command,
            global_kill=self._store.global_kill_active(),
            instrument_known=trader.instrument is not None,
            instrument_halted=trader.instrument is not None and trader.instrument.halted,
        )
        if not transition.allowed:
            return _conflict("ILLEGAL_TRANSITION", transition.reason, trader.state)
        if self._dead_letters is not None and self._dead_letters.holding():
            # D31: quotes stay pulled until an operator clears the dead letter.
            return _conflict("DEAD_LETTER", "a dead letter holds the symbol", trader.state)
        try:
            if command is Command.ENABLE:
                refreshed = self._store.enable(actor=actor)
                if refreshed is not None:
                    trader.config = refreshed
            else:
                self._store.resume(actor=actor)
        except machine.TransitionRefusedError as refused:
            return self._refused(refused)
        trader.enter(transition)
        self._loop.market_moved(force=True)
        return 200, self._state_body()

    def pause(self, args: dict[str, Any], actor: str) -> Answer:
        trader = self._trader
        transition = machine.pause(trader.state)
        if not transition.allowed:
            return _conflict("ILLEGAL_TRANSITION", transition.reason, trader.state)
        try:
            self._store.pause(reason=str(args.get("reason") or "pause"), actor=actor)
        except machine.TransitionRefusedError as refused:
            return self._refused(refused)
        trader.enter(transition)
        if self._flattener is not None:
            self._flattener.start_flatten()
        return 200, self._state_body()

    def kill(self, args: dict[str, Any], actor: str) -> Answer:
        trigger = RiskTrigger(args.get("trigger", RiskTrigger.MANUAL.value))
        detail = str(args.get("detail") or f"manual kill by {actor}")
        self._kill.fire(
            KillDecision(trigger, detail), actor=actor, global_kill=bool(args.get("global"))
        )
        return 200, self._state_body()

    def reset(self, args: dict[str, Any], actor: str) -> Answer:
        trader = self._trader
        position, pnl = trader.position_and_pnl(self._clock_ms())
        context = ResetContext(
            position_usdt=position,
            total_pnl=pnl,
            config=trader.config,
            instrument=trader.instrument,
            # Scenario 7 (the supervisor sending its lag now) is another change's;
            # until it lands the supervisor's own lag check guards a global reset.
            kafka_lag_ms=int(args.get("kafka_lag_ms", 0)),
            kafka_lag_threshold_ms=trader.limits.kafka_lag_threshold_ms,
        )
        transition = machine.reset(
            trader.state,
            refusal=reset_refusal(trader.triggers, context),
            global_kill=self._store.global_kill_active(),
        )
        if not transition.allowed:
            return _conflict("RESET_REFUSED", transition.reason, trader.state)
        if not self._kill.flush():
            return _conflict("RESET_REFUSED", "the kill is not recorded yet", trader.state)
        try:
            self._store.reset(actor=actor)
        except machine.TransitionRefusedError as refused:
            return _conflict("RESET_REFUSED", refused.reason, trader.state)
        trader.enter(transition)
        return 200, self._state_body()

    def flatten(self, args: dict[str, Any], actor: str) -> Answer:
        if self._flattener is not None:
            self._flattener.start_flatten()
        if self._trader.state is SymbolState.ACTIVE:
            self.pause({"reason": "flatten"}, actor)
        return 200, self._state_body()

    def status(self, args: dict[str, Any], actor: str) -> Answer:
        return 200, self._loop.live_status()

    def config_changed(self, args: dict[str, Any], actor: str) -> Answer:
        config = self._store.load_config()
        if config is None:
            return 404, {"error": {"code": "UNKNOWN_SYMBOL", "message": "config row is gone"}}
        self._trader.config = config  # live, also while HALTED (D4)
        return 200, self._state_body()

    def config_deleted(self, args: dict[str, Any], actor: str) -> Answer:
        trader = self._trader
        if trader.state is not SymbolState.PAUSED:
            return _conflict("NOT_IDLE", f"symbol is {trader.state.value}", trader.state)
        if trader.orders or self._store.unsettled_order_ids():
            message = "symbol still has open orders or orders awaiting their final event (D31)"
            return _conflict("OPEN_ORDERS", message, trader.state)
        self._loop.stop(0)
        return 200, self._state_body()
