"""Orders on their way to the Order Service, and what their answers mean.

A requote is one batch: its PENDING rows are committed first (ARCHITECTURE
D10), then its cancels and places go out concurrently while the worker keeps
reading its sockets (D11). Only one batch is in flight at a time. Answers map
to the core's language: a reject feeds the reject-storm window, a timeout is a
RESPONSE_TIMEOUT kill, a failed request is uncertainty (pull the quotes). An
order accepted while the symbol may not quote is canceled at once (D7).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from mmsvc.adapters.order_service.client import (
    BatchResult,
    CancelResult,
    FlatResult,
    OrderServiceClient,
    Outcome,
    PendingBatch,
    PlaceRequest,
    PlaceResult,
)
from mmsvc.domain.engine import QuoteDecision
from mmsvc.domain.killswitch import response_timeout
from mmsvc.domain.model import KillDecision, NewOrder, OrderStatus, RiskTrigger, SymbolState
from mmsvc.domain.ratelimit import TokenBucket
from mmsvc.processes.worker.store import OrderStatusUpdate, WorkerStore
from mmsvc.processes.worker.trader import SymbolTrader

log = logging.getLogger(__name__)

FLAT_DEADLINE_S = 5.0


@dataclass(slots=True)
class BatchOutcome:
    """What a finished batch asks of the worker."""

    kill: KillDecision | None = None
    uncertain: str | None = None
    placed_latencies: list[float] = field(default_factory=list)
    rejects: int = 0


class OrderExecution:
    """Sends the core's decisions and reads back the answers, one batch at a time."""

    def __init__(
        self,
        client: OrderServiceClient,
        store: WorkerStore,
        trader: SymbolTrader,
        bucket: TokenBucket,
        clock_ms: Callable[[], int],
    ) -> None:
        self._client = client
        self._store = store
        self._trader = trader
        self._bucket = bucket
        self._clock_ms = clock_ms
        self._batch: PendingBatch | None = None
        self._cancel_ids: dict[str, str] = {}
        self._updates: list[OrderStatusUpdate] = []
        self._flatten: Future[FlatResult] | None = None
        self._flattener = ThreadPoolExecutor(max_workers=1, thread_name_prefix="flatten")

    @property
    def busy(self) -> bool:
        return self._batch is not None

    def submit(self, decision: QuoteDecision) -> bool:
        """Commit PENDING rows, then send the batch without waiting (D10, D11); False: no-op."""
        cancels = [o for o in decision.cancel if o.order_id is not None]
        admitted, _deferred = self._bucket.admit(list(decision.place), self._clock_ms())
        placing = [(str(uuid.uuid4()), order) for order in admitted]
        if not cancels and not placing:
            return False
        self._store.insert_pending(placing)
        for client_order_id, order in placing:
            self._trader.placed(client_order_id, order)
        for resting in cancels:
            self._trader.cancel_sent(resting.client_order_id)
        self._cancel_ids = {o.order_id: o.client_order_id for o in cancels if o.order_id}
        requests = [self._request(cid, order) for cid, order in placing]
        self._batch = self._client.submit([o.order_id for o in cancels if o.order_id], requests)
        return True

    def _request(self, client_order_id: str, order: NewOrder) -> PlaceRequest:
        return PlaceRequest(
            client_order_id, self._trader.symbol, order.side.value, order.price, order.quantity
        )

    def poll(self) -> BatchOutcome | None:
        """The outcome of the batch in flight once it finished, else None."""
        if self._batch is None or not self._batch.done():
            return None
        result: BatchResult = self._batch.result()
        self._batch = None
        outcome = BatchOutcome()
        self._updates = []
        for placed in result.places:
            self._on_place(placed, outcome)
        for canceled in result.cancels:
            self._on_cancel(canceled, outcome)
        # One transaction for the whole batch's answers: the loop is not blocked per order.
        self._store.order_statuses(self._updates)
        return outcome

    def _late(self, what: str, elapsed_s: float, outcome: BatchOutcome) -> None:
        """An answer that came, but after the budget, is a RESPONSE_TIMEOUT too (spec table)."""
        budget_ms = self._trader.limits.response_timeout_ms
        outcome.kill = outcome.kill or response_timeout(int(elapsed_s * 1000), budget_ms, what)

    def _on_place(self, result: PlaceResult, outcome: BatchOutcome) -> None:
        cid = result.client_order_id
        outcome.placed_latencies.append(result.elapsed_s)
        self._late("place", result.elapsed_s, outcome)
        if result.outcome is Outcome.ACCEPTED and result.order_id is not None:
            self._trader.acknowledged(cid, result.order_id)
            self._updates.append(OrderStatusUpdate(cid, "NEW", order_id=result.order_id))
            if self._trader.state is not SymbolState.ACTIVE:
                self.cancel_late(result.order_id)
        elif result.outcome is Outcome.REJECTED:
            self._trader.finished(cid, OrderStatus.REJECTED)
            self._updates.append(OrderStatusUpdate(cid, "REJECTED", reason=result.code))
            outcome.rejects += 1
            outcome.kill = outcome.kill or self._trader.rejects.record(cid, self._clock_ms())
        elif result.outcome is Outcome.TIMEOUT:
            self._updates.append(OrderStatusUpdate(cid, "UNKNOWN"))
            outcome.kill = outcome.kill or _timeout("place", result.elapsed_s)
        else:
            self._updates.append(OrderStatusUpdate(cid, "UNKNOWN"))
            outcome.uncertain = f"place failed: {result.message}"

    def _on_cancel(self, result: CancelResult, outcome: BatchOutcome) -> None:
        cid = self._cancel_ids.pop(result.order_id, None)
        self._late("cancel", result.elapsed_s, outcome)
        if result.outcome in (Outcome.CANCELED, Outcome.NOT_FOUND):
            # NOT_FOUND: already final; its engine event says whether it filled.
            if cid is not None:
                self._trader.finished(cid, OrderStatus.CANCELED)
                if result.outcome is Outcome.CANCELED:
                    self._updates.append(OrderStatusUpdate(cid, "CANCELED"))
        elif result.outcome is Outcome.TIMEOUT:
            outcome.kill = outcome.kill or _timeout("cancel", result.elapsed_s)
        else:
            outcome.uncertain = f"cancel failed: {result.message}"

    def cancel_late(self, order_id: str) -> None:
        """An order accepted while the symbol may not quote is canceled at once (D7)."""
        self._flattener.submit(self._client.cancel, order_id)

    # ------------------------------------------------------ cancel until flat

    def start_flatten(self) -> None:
        """Cancel-all for the symbol until the Order Service shows none open (D7)."""
        if self._flatten is None:
            self._flatten = self._flattener.submit(
                self._client.cancel_until_flat, self._trader.symbol, FLAT_DEADLINE_S
            )

    @property
    def flattening(self) -> bool:
        return self._flatten is not None

    def poll_flatten(self) -> bool | None:
        """True once flat (rows marked CANCELED), False to retry, None while under way."""
        if self._flatten is None or not self._flatten.done():
            return None
        result = self._flatten.result()
        self._flatten = None
        if result.flat:
            self._store.cancel_open_orders()
            self._trader.orders.clear()
            return True
        log.error("cancel-all not confirmed yet; retrying", extra={"symbol": self._trader.symbol})
        return False

    def close(self) -> None:
        self._flattener.shutdown(wait=False, cancel_futures=True)


def _timeout(what: str, elapsed_s: float) -> KillDecision:
    return KillDecision(
        RiskTrigger.RESPONSE_TIMEOUT,
        f"{what}: no answer within the budget ({elapsed_s * 1000:.0f} ms)",
    )
