"""Commands a worker takes from the supervisor, answered with an HTTP-like status.

Every transition goes through the core's state machine first (illegal ones
are 409 with the current state), is committed with its event, and only then
takes effect in memory. Enable and resume are refused while the global kill
flag is set (ARCHITECTURE D3) or while the instrument is unknown (D4); a reset
re-checks the symbol's triggers (D9).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from mmsvc.adapters.kafka.events import now_ms
from mmsvc.adapters.zmq import protocol
from mmsvc.adapters.zmq.protocol import Command
from mmsvc.domain import state as machine
from mmsvc.domain.model import KillDecision, RiskTrigger, SymbolState
from mmsvc.domain.risk import ResetContext, reset_refusal
from mmsvc.processes.worker.status import live_status

if TYPE_CHECKING:
    from mmsvc.processes.worker.main import Worker

Answer = tuple[int, dict[str, Any]]


def _conflict(code: str, message: str, state: SymbolState) -> Answer:
    return 409, {"error": {"code": code, "message": message}, "state": state.value}


class CommandHandler:
    """Dispatches one control command to its rule."""

    def __init__(self, worker: Worker) -> None:
        self._worker = worker
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
        return {"symbol": self._worker.symbol, "state": self._worker.trader.state.value}

    def enable(self, args: dict[str, Any], actor: str) -> Answer:
        return self._activate(machine.Command.ENABLE, actor)

    def resume(self, args: dict[str, Any], actor: str) -> Answer:
        trader = self._worker.trader
        if trader.state is SymbolState.PAUSED and not trader.config.enabled:
            return _conflict("NOT_ENABLED", "symbol is not enabled: use enable", trader.state)
        return self._activate(machine.Command.RESUME, actor)

    def _activate(self, command: machine.Command, actor: str) -> Answer:
        worker, trader = self._worker, self._worker.trader
        transition = machine.apply(
            trader.state,
            command,
            global_kill=worker.store.global_kill_active(),
            instrument_known=trader.instrument is not None,
        )
        if not transition.allowed:
            return _conflict("ILLEGAL_TRANSITION", transition.reason, trader.state)
        if command is machine.Command.ENABLE:
            worker.store.enable(actor=actor)
            refreshed = worker.store.load_config()
            if refreshed is not None:
                trader.config = refreshed
        else:
            worker.store.set_state(SymbolState.ACTIVE, reason=command.value, actor=actor)
        trader.state = SymbolState.ACTIVE
        worker.market_moved(force=True)
        return 200, self._state_body()

    def pause(self, args: dict[str, Any], actor: str) -> Answer:
        worker, trader = self._worker, self._worker.trader
        transition = machine.pause(trader.state)
        if not transition.allowed:
            return _conflict("ILLEGAL_TRANSITION", transition.reason, trader.state)
        worker.store.set_state(
            SymbolState.PAUSED, reason=str(args.get("reason") or "pause"), actor=actor
        )
        trader.state = SymbolState.PAUSED
        if worker.execution is not None:
            worker.execution.start_flatten()
        return 200, self._state_body()

    def kill(self, args: dict[str, Any], actor: str) -> Answer:
        trigger = RiskTrigger(args.get("trigger", RiskTrigger.MANUAL.value))
        detail = str(args.get("detail") or f"manual kill by {actor}")
        self._worker.kill.fire(
            KillDecision(trigger, detail), actor=actor, global_kill=bool(args.get("global"))
        )
        return 200, self._state_body()

    def reset(self, args: dict[str, Any], actor: str) -> Answer:
        worker, trader = self._worker, self._worker.trader
        now = now_ms()
        position, pnl = trader.position_and_pnl(now)
        context = ResetContext(
            position_usdt=position,
            total_pnl=pnl,
            config=trader.config,
            instrument=trader.instrument,
            kafka_lag_ms=int(args.get("kafka_lag_ms", 0)),
            kafka_lag_threshold_ms=trader.limits.kafka_lag_threshold_ms,
        )
        transition = machine.reset(
            trader.state,
            refusal=reset_refusal(trader.triggers, context),
            global_kill=worker.store.global_kill_active(),
        )
        if not transition.allowed:
            return _conflict("RESET_REFUSED", transition.reason, trader.state)
        worker.store.set_state(SymbolState.PAUSED, reason="reset", actor=actor)
        trader.state, trader.triggers = SymbolState.PAUSED, []
        trader.rejects.clear()
        return 200, self._state_body()

    def flatten(self, args: dict[str, Any], actor: str) -> Answer:
        worker = self._worker
        if worker.execution is not None:
            worker.execution.start_flatten()
        if worker.trader.state is SymbolState.ACTIVE:
            self.pause({"reason": "flatten"}, actor)
        return 200, self._state_body()

    def status(self, args: dict[str, Any], actor: str) -> Answer:
        return 200, live_status(self._worker)

    def config_changed(self, args: dict[str, Any], actor: str) -> Answer:
        config = self._worker.store.load_config()
        if config is None:
            return 404, {"error": {"code": "UNKNOWN_SYMBOL", "message": "config row is gone"}}
        self._worker.trader.config = config  # live, also while HALTED (D4)
        return 200, self._state_body()

    def config_deleted(self, args: dict[str, Any], actor: str) -> Answer:
        worker, trader = self._worker, self._worker.trader
        if trader.state is not SymbolState.PAUSED:
            return _conflict("NOT_IDLE", f"symbol is {trader.state.value}", trader.state)
        if trader.orders or worker.store.open_order_ids():
            return _conflict("OPEN_ORDERS", "symbol still has open orders", trader.state)
        worker.stop(0)
        return 200, self._state_body()
