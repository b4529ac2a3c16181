"""Hand-written stubs for the worker's collaborators: no socket, no database, no thread."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy.exc import OperationalError

from mmsvc.adapters.order_service.client import (
    Backoff,
    CancelResult,
    FlatResult,
    OpenOrder,
    Outcome,
    PendingBatch,
    PlaceRequest,
    PlaceResult,
    RequestFailure,
)
from mmsvc.domain.inventory import Inventory
from mmsvc.domain.model import (
    KillDecision,
    MMConfig,
    NewOrder,
    RiskTrigger,
    ServiceLimits,
    Side,
    SymbolState,
)
from mmsvc.domain.ratelimit import TokenBucket
from mmsvc.domain.state import TransitionRefusedError
from mmsvc.domain.trader import SymbolTrader
from mmsvc.processes.worker.execution import OrderExecution
from mmsvc.processes.worker.store import OrderStatusUpdate
from tests.unit.domain.builders import config, fill, instrument

T = TypeVar("T")
SYMBOL = "TESTUSDT"


def done(value: T) -> Future[T]:
    future: Future[T] = Future()
    future.set_result(value)
    return future


class Clock:
    """Milliseconds that move only when a test says so."""

    def __init__(self, now: int = 1_000_000) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


class Inline:
    """An executor that runs at once: a background call is done when submit returns."""

    def submit(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        return done(fn(*args))

    def shutdown(self, wait: bool = True, cancel_futures: bool = False) -> None:
        pass


class Venue:
    """The Order Service as the worker's client sees it, scripted by the test.

    Places are answered from ``place_answers`` (default: 201); a batch whose
    places are ``held`` stays in flight until the test releases it. Cancels are
    answered from ``cancel_answers`` (default: 200). ``open`` is what a listing
    shows; ``cancel_until_flat`` answers ``flat``.
    """

    def __init__(self) -> None:
        self.place_answers: deque[Callable[[PlaceRequest], PlaceResult]] = deque()
        self.cancel_answers: deque[Outcome] = deque()
        self.held: list[Future[PlaceResult]] = []
        self.hold_places = False
        self.placed: list[PlaceRequest] = []
        self.canceled: list[str] = []
        self.listings = 0
        self.open: list[OpenOrder] | RequestFailure = []
        self.flat = True
        self._ids = iter(range(1, 10**6))

    def accept(self, req: PlaceRequest) -> PlaceResult:
        return PlaceResult(Outcome.ACCEPTED, req.client_order_id, 0.001, order_id=self.order_id())

    def order_id(self) -> str:
        return f"o{next(self._ids)}"

    def submit(self, cancels: Sequence[str], places: Sequence[PlaceRequest]) -> PendingBatch:
        cancel_futures = tuple(done(self.cancel(oid)) for oid in cancels)
        place_futures = []
        for req in places:
            self.placed.append(req)
            if self.hold_places:
                held: Future[PlaceResult] = Future()
                self.held.append(held)
                place_futures.append(held)
            else:
                answer = self.place_answers.popleft() if self.place_answers else self.accept
                place_futures.append(done(answer(req)))
        return PendingBatch(cancel_futures, tuple(place_futures), 0.0)

    def cancel(self, order_id: str) -> CancelResult:
        self.canceled.append(order_id)
        outcome = self.cancel_answers.popleft() if self.cancel_answers else Outcome.CANCELED
        return CancelResult(outcome, order_id, 0.001)

    def list_open(self, symbol: str | None, timeout_s: float | None = None) -> Any:
        self.listings += 1
        return self.open

    def cancel_until_flat(self, symbol: str | None, deadline_s: float) -> FlatResult:
        return FlatResult(self.flat, 1, 0.001, 0 if self.flat else 1)


class Store:
    """The worker's store, remembering every write; ``fail_halts`` halts raise a DB error."""

    def __init__(self) -> None:
        self.pending: list[tuple[str, NewOrder]] = []
        self.updates: list[OrderStatusUpdate] = []
        self.halts: list[KillDecision] = []
        self.fail_halts = 0
        self.states: list[str] = []
        self.recorded: tuple[SymbolState, list[RiskTrigger]] = (SymbolState.PAUSED, [])
        self.refuse: TransitionRefusedError | None = None
        self.global_kill = False
        self.unsettled: list[object] = []
        self.before_write: Callable[[], None] = lambda: None

    def insert_pending(self, orders: Sequence[tuple[str, NewOrder]]) -> None:
        self.before_write()
        self.pending.extend(orders)

    def order_statuses(self, updates: list[OrderStatusUpdate]) -> list[None]:
        self.before_write()
        self.updates.extend(updates)
        return [None for _ in updates]

    def halt(
        self, kill: KillDecision, *, actor: str, position: Decimal, pnl: Decimal, publish: bool
    ) -> bool:
        if self.fail_halts:
            self.fail_halts -= 1
            raise OperationalError("UPDATE mm_states", {}, Exception("connection refused"))
        self.halts.append(kill)
        return True

    def stale_episode(self, detail: str, position: Decimal, pnl: Decimal) -> None:
        self.before_write()

    def _change(self, what: str) -> None:
        self.before_write()
        if self.refuse is not None:
            raise self.refuse
        self.states.append(what)

    def enable(self, *, actor: str) -> MMConfig | None:
        self._change("enable")
        return None

    def resume(self, *, actor: str) -> None:
        self._change("resume")

    def pause(self, *, reason: str, actor: str) -> None:
        self._change("pause")

    def reset(self, *, actor: str) -> None:
        self._change("reset")

    def global_kill_active(self) -> bool:
        return self.global_kill

    def load_config(self) -> MMConfig | None:
        return config()

    def unsettled_order_ids(self) -> list[object]:
        return self.unsettled

    def recorded_state(self) -> tuple[SymbolState, list[RiskTrigger]]:
        return self.recorded


def trader(state: SymbolState = SymbolState.ACTIVE, **limits: Any) -> SymbolTrader:
    """A trader of TESTUSDT with its instrument known and a flat inventory."""
    t = SymbolTrader(config(), ServiceLimits(**limits), state)
    t.on_instrument(instrument(), 0)
    return t


def book(t: SymbolTrader, bid: str = "99.99", ask: str = "100.01", seq: int = 1) -> None:
    """A snapshot of one level a side, stamped ``seq`` ms."""
    t.on_snapshot(
        {
            "sequence": seq,
            "bids": [{"price": bid, "size": "10"}],
            "asks": [{"price": ask, "size": "10"}],
            "ts_ms": seq,
        }
    )


def execution(
    t: SymbolTrader, venue: Venue, store: Store, clock: Clock, **kwargs: Any
) -> OrderExecution:
    return OrderExecution(
        venue,  # type: ignore[arg-type]
        store,  # type: ignore[arg-type]
        t,
        TokenBucket(1000, clock()),
        clock,
        backoff=Backoff(initial_s=0.01, factor=2.0, max_s=0.08),
        background=Inline(),  # type: ignore[arg-type]
        **kwargs,
    )


def buy(price: str = "99.00", quantity: str = "1") -> NewOrder:
    return NewOrder(Side.BUY, Decimal(price), Decimal(quantity), 0)


def inventory_long(quantity: str) -> Inventory:
    inv = Inventory(SYMBOL, "TEST")
    inv.apply(fill(Side.BUY, "100", quantity))
    return inv
