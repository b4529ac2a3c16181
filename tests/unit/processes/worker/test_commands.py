"""Commands with stubs: one guarded road to ACTIVE, resets on facts (D9, D23, D30, D31)."""

from __future__ import annotations

from typing import Any

from mmsvc.adapters.zmq import protocol
from mmsvc.domain.model import RiskTrigger, SymbolState
from mmsvc.domain.state import Command, TransitionRefusedError
from mmsvc.processes.worker.commands import CommandHandler
from mmsvc.processes.worker.killing import KillSwitch
from tests.unit.processes.worker.stubs import Clock, Store, book, inventory_long, trader


class Loop:
    def __init__(self) -> None:
        self.moved = 0
        self.stopped: int | None = None

    def market_moved(self, force: bool = False) -> None:
        self.moved += 1

    def publish_status(self) -> None:
        pass

    def stop(self, code: int = 0) -> None:
        self.stopped = code

    def live_status(self) -> dict[str, Any]:
        return {}


def handler(state: SymbolState, store: Store | None = None):  # type: ignore[no-untyped-def]
    t, store, loop, clock = trader(state), store or Store(), Loop(), Clock()
    kill = KillSwitch(t, store, None, clock_ms=clock)
    return t, store, loop, CommandHandler(t, store, kill, None, loop, clock_ms=clock)


def command(h: CommandHandler, cmd: str, **args: Any) -> tuple[int, dict[str, Any]]:
    return h.handle(protocol.WorkerCommand("t-1", Command(cmd), args, actor="ops"))


def test_enable_over_a_kill_recorded_in_postgresql_is_refused_and_the_kill_taken_up() -> None:
    store = Store()
    store.refuse = TransitionRefusedError(SymbolState.HALTED, "symbol is HALTED, not PAUSED")
    store.recorded = (SymbolState.HALTED, [RiskTrigger.MANUAL])
    t, _, loop, h = handler(SymbolState.PAUSED, store)
    status, body = command(h, Command.ENABLE)
    assert status == 409
    assert body["state"] == "HALTED"
    assert t.state is SymbolState.HALTED
    assert t.triggers == [RiskTrigger.MANUAL]
    assert loop.moved == 0


def test_enable_applies_in_memory_only_after_the_guarded_write() -> None:
    t, store, _loop, h = handler(SymbolState.PAUSED)
    status, _ = command(h, Command.ENABLE)
    assert status == 200
    assert store.states == ["enable"]
    assert t.state is SymbolState.ACTIVE


def test_reset_of_an_exposure_halt_without_a_price_is_refused() -> None:
    """Scenario 4: right after a restart, a long position and no book: no default of zero."""
    t, store, _, h = handler(SymbolState.HALTED)
    t.triggers = [RiskTrigger.EXPOSURE]
    t.inventory = inventory_long("1")
    status, body = command(h, Command.RESET)
    assert status == 409
    assert "no price yet" in body["error"]["message"]
    assert t.state is SymbolState.HALTED
    assert store.states == []


def test_reset_of_a_loss_halt_without_a_price_is_refused() -> None:
    t, _, _, h = handler(SymbolState.HALTED)
    t.triggers = [RiskTrigger.LOSS]
    t.inventory = inventory_long("1")
    status, body = command(h, Command.RESET)
    assert status == 409
    assert "no price yet" in body["error"]["message"]


def test_reset_of_an_exposure_halt_with_a_price_within_the_limit_is_allowed() -> None:
    t, store, _, h = handler(SymbolState.HALTED)
    t.triggers = [RiskTrigger.EXPOSURE]
    t.inventory = inventory_long("1")
    book(t)
    status, _ = command(h, Command.RESET)
    assert status == 200
    assert t.state is SymbolState.PAUSED
    assert t.triggers == []
    assert store.states == ["reset"]


def test_a_config_delete_waits_for_rows_awaiting_their_final_event() -> None:
    store = Store()
    store.unsettled = ["c-canceled-by-delete-200"]
    _, _, loop, h = handler(SymbolState.PAUSED, store)
    status, body = command(h, Command.CONFIG_DELETED)
    assert status == 409
    assert body["error"]["code"] == "OPEN_ORDERS"
    assert loop.stopped is None
