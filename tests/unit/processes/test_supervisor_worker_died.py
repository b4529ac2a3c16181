"""A worker that dies with a kill pending is HALTED before its successor starts (D23, D30)."""

from __future__ import annotations

import time
from typing import Any, cast

from mmsvc.domain.state import Command
from mmsvc.processes.supervisor.main import Supervisor
from mmsvc.processes.supervisor.requests import PendingRequest, single


class StubSupervisor:
    """What Supervisor._worker_died touches, with the halt recorded instead of written."""

    def __init__(self, *pending: PendingRequest) -> None:
        self.pending = {p.request_id: p for p in pending}
        self.connected = {"BTCUSDT"}
        self.orders = None
        self.halted: list[list[str]] = []

    def _halt_silent_workers(self, pending: PendingRequest, symbols: list[str]) -> None:
        assert pending.command is Command.KILL
        self.halted.append(symbols)


def pending(command: Command, waiting: set[str]) -> PendingRequest:
    request_id = f"{command}-{sorted(waiting)}"
    return PendingRequest(b"admin", request_id, command, waiting, time.monotonic() + 5, single)


def died(stub: StubSupervisor) -> None:
    Supervisor._worker_died(cast(Any, stub), "BTCUSDT", -9)


def test_a_kill_the_dead_worker_never_answered_is_recorded_at_once() -> None:
    stub = StubSupervisor(pending(Command.KILL, {"BTCUSDT"}))
    died(stub)
    assert stub.halted == [["BTCUSDT"]]
    assert "BTCUSDT" not in stub.connected


def test_no_kill_pending_records_nothing() -> None:
    stub = StubSupervisor(pending(Command.PAUSE, {"BTCUSDT"}), pending(Command.KILL, {"ETHUSDT"}))
    died(stub)
    assert stub.halted == []
