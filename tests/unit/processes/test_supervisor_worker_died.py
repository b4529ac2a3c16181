"""A worker that dies with a kill pending is HALTED before its successor starts (D23, D30)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, cast

from mmsvc.domain.state import Command
from mmsvc.processes.supervisor.main import Supervisor
from mmsvc.processes.supervisor.requests import PendingRequest, single
from mmsvc.processes.supervisor.router import Router, WorkerLink


class InlineExecutor:
    """Runs what is submitted at once, on the calling thread."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        fn(*args)


class StubOrders:
    """The Order Service client's cancel-until-flat, recorded instead of sent."""

    def __init__(self) -> None:
        self.flattened: list[tuple[str | None, float]] = []

    def cancel_until_flat(self, symbol: str | None, deadline_s: float) -> None:
        self.flattened.append((symbol, deadline_s))


class StubSupervisor:
    """What Supervisor._worker_died touches, with the halt recorded instead of written."""

    def __init__(self, *pending: PendingRequest) -> None:
        self.pending = {p.request_id: p for p in pending}
        self.connected = {"BTCUSDT"}
        self.orders = StubOrders()
        self.cancels = InlineExecutor()
        self.halted: list[list[str]] = []
        self.router = Router(account_id="mm", peek_account=lambda _value: None)
        self.router.attach(WorkerLink("BTCUSDT", cast(Any, None)))

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
    assert stub.halted == [["BTCUSDT"]]  # which cancels until flat itself
    assert stub.orders.flattened == []
    assert "BTCUSDT" not in stub.connected


def test_no_kill_pending_records_nothing() -> None:
    stub = StubSupervisor(pending(Command.PAUSE, {"BTCUSDT"}), pending(Command.KILL, {"ETHUSDT"}))
    died(stub)
    assert stub.halted == []
    assert [s for s, _ in stub.orders.flattened] == ["BTCUSDT"]  # D2: flat at once


def test_a_dead_worker_s_market_data_is_held_for_its_successor() -> None:
    """Its successor cannot take messages before HELLO; the book data waits (D15, issue 15)."""
    stub = StubSupervisor()
    died(stub)
    assert stub.router.links[b"BTCUSDT"].warming
