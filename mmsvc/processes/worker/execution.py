"""Orders on their way to the Order Service, and what their answers mean.

A requote is one batch: its PENDING rows are committed first (ARCHITECTURE
D10), then its cancels and places go out concurrently while the worker keeps
reading its sockets (D11). Only one batch is in flight at a time. Answers map
to the core's language: a reject feeds the reject-storm window (a post-only
cross holds that side instead: D23), a timeout is a RESPONSE_TIMEOUT kill, a
failed request is uncertainty (pull the quotes).

D22: the venue's open orders are the truth. An order is remembered until the
venue says it is final; any open order of ours the worker does not want (a 201
after a flatten, a leftover) is canceled by order_id and retried with backoff
until the venue answers; every RECONCILE_INTERVAL, and at once after a timeout
or an error, the venue's listing is compared with the worker's own orders and
each difference is counted and repaired. Only an engine event, a DELETE answer
or the listing makes an order final, and only the engine event releases its
exposure (D31).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

from mmsvc.adapters import metrics
from mmsvc.adapters.db.engine import database_down
from mmsvc.adapters.order_service.client import (
    DEFAULT_BACKOFF,
    Backoff,
    BatchResult,
    CancelResult,
    FlatResult,
    OpenOrder,
    OrderServiceClient,
    Outcome,
    PendingBatch,
    PlaceRequest,
    PlaceResult,
    RequestFailure,
)
from mmsvc.domain.engine import QuoteDecision
from mmsvc.domain.killswitch import response_timeout
from mmsvc.domain.model import (
    FINAL_STATUSES,
    KillDecision,
    NewOrder,
    OrderStatus,
    RiskTrigger,
    Side,
    SymbolState,
)
from mmsvc.domain.ratelimit import TokenBucket
from mmsvc.domain.trader import SymbolTrader
from mmsvc.processes.worker.store import OrderStatusUpdate, WorkerStore

log = logging.getLogger(__name__)

FLAT_DEADLINE_S = 5.0
LISTING_TIMEOUT_S = 1.0
RECONCILE_RETRY_MS = 250
# The venue's code for a post-only order that would take liquidity (D23).
POST_ONLY_WOULD_CROSS = "POST_ONLY_WOULD_CROSS"


@dataclass(slots=True)
class BatchOutcome:
    """What a finished batch asks of the worker."""

    kill: KillDecision | None = None
    uncertain: str | None = None
    placed_latencies: list[float] = field(default_factory=list)
    rejects: int = 0
    crossed: list[Side] = field(default_factory=list)


@dataclass(slots=True)
class _Chase:
    """One unwanted order being canceled by id until the venue answers (D22)."""

    client_order_id: str | None
    next_at_ms: int
    delay_ms: float


class OrderExecution:
    """Sends the core's decisions, chases unwanted orders, reconciles with the venue."""

    def __init__(
        self,
        client: OrderServiceClient,
        store: WorkerStore,
        trader: SymbolTrader,
        bucket: TokenBucket,
        clock_ms: Callable[[], int],
        *,
        reconcile_interval_ms: int = 5_000,
        venue_hold_max_ms: int = 5_000,
        backoff: Backoff = DEFAULT_BACKOFF,
        background: ThreadPoolExecutor | None = None,
        on_database_down: Callable[[BaseException], None] | None = None,
    ) -> None:
        self._client = client
        self._store = store
        self._trader = trader
        self._bucket = bucket
        self._clock_ms = clock_ms
        self._reconcile_interval_ms = reconcile_interval_ms
        self._venue_hold_max_ms = venue_hold_max_ms
        self._backoff = backoff
        self._batch: PendingBatch | None = None
        self._cancel_ids: dict[str, str] = {}
        self._updates: list[OrderStatusUpdate] = []
        self._unwritten: list[OrderStatusUpdate] = []  # answers PostgreSQL missed (D25)
        self._on_database_down = on_database_down or _reraise
        self._chases: dict[str, _Chase] = {}
        self._chasing: PendingBatch | None = None
        self._chase_ids: list[str] = []
        self._listing: Future[list[OpenOrder] | RequestFailure] | None = None
        self._listed_known: dict[str, str] = {}  # answered orders when the listing started
        self._listed_unknown: set[str] = set()
        self._absent_since: dict[str, int] = {}
        self._next_reconcile_ms = 0
        self._flatten: Future[FlatResult] | None = None
        self._flatten_raced = False
        self.flat_confirmed = False
        self._background = background or ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="flatten"
        )

    @property
    def busy(self) -> bool:
        return self._batch is not None

    def submit(self, decision: QuoteDecision) -> bool:
        """Commit PENDING rows, then send the batch without waiting (D10, D11); False: no-op."""
        cancels = [o for o in decision.cancel if o.order_id is not None]
        admitted, _ = self._bucket.admit(list(decision.place), self._clock_ms())
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
        if placing:
            self.flat_confirmed = False
            self._flatten_raced = self._flatten_raced or self._flatten is not None
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
        self._write(self._updates)
        return outcome

    def _write(self, updates: list[OrderStatusUpdate]) -> None:
        """Record the venue's answers; kept for later while PostgreSQL is down (D25).

        The answers are facts about the venue and a row only ever moves forward,
        so writing them late is safe, and the outcome of the batch still acts now
        (a timeout's kill, a reject's count). ``flush_unwritten`` writes them first
        once PostgreSQL answers.
        """
        self._unwritten.extend(updates)
        if not self._unwritten:
            return
        try:
            self.flush_unwritten()
        except Exception as exc:
            if not database_down(exc):
                raise
            self._on_database_down(exc)

    def flush_unwritten(self) -> None:
        """Write the answers kept during an outage; raises while PostgreSQL is still down."""
        if self._unwritten:
            self._store.order_statuses(self._unwritten)
            self._unwritten = []

    def _late(self, what: str, elapsed_s: float, outcome: BatchOutcome) -> None:
        """An answer that came, but after the budget, is a RESPONSE_TIMEOUT too (spec table)."""
        budget_ms = self._trader.limits.response_timeout_ms
        outcome.kill = outcome.kill or response_timeout(int(elapsed_s * 1000), budget_ms, what)

    def _on_place(self, result: PlaceResult, outcome: BatchOutcome) -> None:
        cid = result.client_order_id
        outcome.placed_latencies.append(result.elapsed_s)
        self._late("place", result.elapsed_s, outcome)
        if result.outcome is Outcome.ACCEPTED and result.order_id is not None:
            order = self._trader.acknowledged(cid, result.order_id)
            self._updates.append(OrderStatusUpdate(cid, "NEW", order_id=result.order_id))
            if order is not None and self._trader.state is not SymbolState.ACTIVE:
                self.chase(result.order_id, cid)  # accepted after a kill, pause or flatten
        elif result.outcome is Outcome.REJECTED:
            # A 4xx: the venue never created the order, so nothing can fill (D10).
            order = self._trader.orders.get(cid)
            self._trader.finished(cid, OrderStatus.REJECTED)
            self._updates.append(
                OrderStatusUpdate(cid, "REJECTED", reason=result.code, final_event=True)
            )
            if result.code == POST_ONLY_WOULD_CROSS:
                # D23: our book is behind the venue's; hold that side, do not count it.
                # The venue may publish the REJECTED event before it answers 422: then
                # the event already held the side and took the order (bench_crosses
                # found it counted toward REJECT_STORM: every symbol halted).
                if order is not None:
                    outcome.crossed.append(order.side)
                return
            # Each counted reject is logged with the venue's code: a REJECT_STORM kill
            # must be explainable from the log alone (at most the storm's count of lines).
            log.warning(
                "order rejected",
                extra={
                    "symbol": self._trader.symbol,
                    "client_order_id": cid,
                    "code": result.code,
                    "detail": result.message,
                },
            )
            outcome.rejects += 1
            outcome.kill = outcome.kill or self._trader.rejects.record(cid, self._clock_ms())
        elif result.outcome is Outcome.TIMEOUT:
            self._trader.timed_out(cid)
            self._updates.append(OrderStatusUpdate(cid, "UNKNOWN"))
            outcome.kill = outcome.kill or _timeout("place", result.elapsed_s)
            self.reconcile_now()
        else:
            self._trader.timed_out(cid)
            self._updates.append(OrderStatusUpdate(cid, "UNKNOWN"))
            outcome.uncertain = f"place failed: {result.message}"
            self.reconcile_now()

    def _on_cancel(self, result: CancelResult, outcome: BatchOutcome) -> None:
        cid = self._cancel_ids.pop(result.order_id, None)
        self._late("cancel", result.elapsed_s, outcome)
        if result.outcome is Outcome.CANCELED:
            self._cancel_confirmed(cid)
        elif result.outcome is Outcome.NOT_FOUND:
            # Never final (D31): its engine event says whether it filled; the
            # listing says whether it still rests.
            self.reconcile_now()
        elif result.outcome is Outcome.TIMEOUT:
            outcome.kill = outcome.kill or _timeout("cancel", result.elapsed_s)
            self.chase(result.order_id, cid)
            self.reconcile_now()
        else:
            outcome.uncertain = f"cancel failed: {result.message}"
            self.chase(result.order_id, cid)
            self.reconcile_now()

    def _cancel_confirmed(self, cid: str | None) -> None:
        """DELETE 200: the row is CANCELED, still awaiting its final event (D31)."""
        if cid is not None:
            self._trader.cancel_confirmed(cid)
            self._updates.append(OrderStatusUpdate(cid, "CANCELED"))

    # ------------------------------------------------- cancel by id, with backoff

    def chase(self, order_id: str, client_order_id: str | None = None) -> None:
        """Cancel this order by id until the venue answers, with backoff (D7, D22)."""
        if order_id not in self._chases:
            first = self._backoff.initial_s * 1000
            self._chases[order_id] = _Chase(client_order_id, self._clock_ms(), first)

    @property
    def chasing(self) -> int:
        """How many unwanted orders are still being canceled."""
        return len(self._chases)

    def _pump_chases(self, now: int) -> None:
        if self._chasing is not None:
            if not self._chasing.done():
                return
            self._chase_answers(self._chasing.result().cancels, now)
            self._chasing = None
        for order_id, chase in list(self._chases.items()):
            cid = chase.client_order_id
            if cid is not None and cid not in self._trader.orders:
                del self._chases[order_id]  # its final event came: nothing left to cancel
        due = [oid for oid, c in self._chases.items() if c.next_at_ms <= now]
        if due:
            self._chase_ids = due
            self._chasing = self._client.submit(due, [])

    def _chase_answers(self, answers: tuple[CancelResult, ...], now: int) -> None:
        self._updates = []
        for answer in answers:
            chase = self._chases.get(answer.order_id)
            if chase is None:
                continue
            if answer.outcome in (Outcome.CANCELED, Outcome.NOT_FOUND):
                # 200: CANCELED, awaiting its event. 404: not open at the venue by
                # that id; the row waits for its event, and the listing would
                # show it again if it came alive.
                del self._chases[answer.order_id]
                if answer.outcome is Outcome.CANCELED:
                    self._cancel_confirmed(chase.client_order_id)
                continue
            chase.delay_ms = min(chase.delay_ms * self._backoff.factor, self._backoff.max_s * 1000)
            chase.next_at_ms = now + int(chase.delay_ms)
            self.reconcile_now()
        if self._updates:
            self._write(self._updates)
            self._updates = []

    # ------------------------------------------------------------ reconciliation

    def reconcile_now(self) -> None:
        """Compare with the venue's listing at once (after a timeout or an error: D22)."""
        self._next_reconcile_ms = 0

    def housekeep(self) -> None:
        """Chase unwanted orders and reconcile when due; call on every loop turn."""
        now = self._clock_ms()
        for order in self._trader.unwanted():
            if order.order_id is not None and order.status is not OrderStatus.PENDING_CANCEL:
                self.chase(order.order_id, order.client_order_id)
        self._pump_reconcile(now)
        self._pump_chases(now)

    def _pump_reconcile(self, now: int) -> None:
        if self._listing is None:
            if now < self._next_reconcile_ms or self._batch is not None:
                return  # a place in flight: its answer must be known before a listing is read
            self._start_listing()
        listing = self._listing
        if listing is None or not listing.done():
            return
        listed = listing.result()
        self._listing = None
        if isinstance(listed, RequestFailure):
            log.warning(
                "reconciliation listing failed",
                extra={"symbol": self._trader.symbol, "detail": listed.message},
            )
            self._next_reconcile_ms = now + RECONCILE_RETRY_MS
            # D25: an Order Service that does not answer is doubt about what rests:
            # pull the quotes (cancel until flat, retried until it answers again).
            self.start_flatten()
            return
        self._next_reconcile_ms = now + self._reconcile_interval_ms
        self.reconcile(listed, now)

    def _start_listing(self) -> None:
        """Ask the venue for its open orders, noting which of ours were answered by now."""
        orders = self._trader.orders.values()
        self._listed_known = {o.client_order_id: o.order_id for o in orders if o.order_id}
        self._listed_unknown = {
            o.client_order_id
            for o in orders
            if o.status is OrderStatus.UNKNOWN and o.order_id is None
        }
        self._listing = self._background.submit(
            self._client.list_open, self._trader.symbol, LISTING_TIMEOUT_S
        )

    def reconcile(self, listed: list[OpenOrder], now: int) -> None:
        """Repair every difference between the venue's open orders and ours (D22, D31)."""
        trader, updates = self._trader, []
        seen: set[str] = set()
        for venue in listed:
            seen.add(venue.client_order_id)
            order = trader.orders.get(venue.client_order_id)
            if order is None:
                self._mismatch("venue_only")  # a leftover or a forgotten order: cancel it
                self.chase(venue.order_id)
                continue
            if order.order_id is None:
                self._mismatch("unknown_found")
                trader.acknowledged(order.client_order_id, venue.order_id)
                updates.append(
                    OrderStatusUpdate(order.client_order_id, "NEW", order_id=venue.order_id)
                )
                self._absent_since.pop(order.client_order_id, None)
            wanted = trader.state is SymbolState.ACTIVE and order.status not in FINAL_STATUSES
            if not wanted or order.status in FINAL_STATUSES:
                if order.status in FINAL_STATUSES:
                    self._mismatch("canceled_but_open")
                self.chase(venue.order_id, order.client_order_id)
        for cid, order in list(trader.orders.items()):
            if cid in seen or order.status in FINAL_STATUSES:
                continue
            if cid in self._listed_known:
                # Answered, and absent from a listing read after its answer: final at
                # the venue; its exposure stays until its engine event (D31).
                self._mismatch("worker_only")
                trader.cancel_confirmed(cid)
                updates.append(OrderStatusUpdate(cid, "CANCELED"))
            elif cid in self._listed_unknown:
                since = self._absent_since.setdefault(cid, now)
                if now - since >= self._venue_hold_max_ms:
                    # Never answered and absent for VENUE_HOLD_MAX: it never came alive (D31).
                    self._mismatch("unknown_absent")
                    trader.finished(cid, OrderStatus.CANCELED)
                    updates.append(
                        OrderStatusUpdate(
                            cid, "CANCELED", reason="ABSENT_FROM_VENUE", final_event=True
                        )
                    )
                    self._absent_since.pop(cid, None)
        if updates:
            self._write(updates)
        if not listed and self._batch is None and trader.state is not SymbolState.ACTIVE:
            self.flat_confirmed = True

    def _mismatch(self, kind: str) -> None:
        metrics.reconcile_mismatch(self._trader.symbol, kind)
        log.warning(
            "venue and worker disagree; repairing",
            extra={"symbol": self._trader.symbol, "kind": kind},
        )

    # ------------------------------------------------------ cancel until flat

    def start_flatten(self) -> None:
        """Cancel-all for the symbol until the Order Service shows none open (D7, D22)."""
        self.flat_confirmed = False
        if self._flatten is None:
            self._flatten_raced = self._batch is not None
            self._flatten = self._background.submit(
                self._client.cancel_until_flat, self._trader.symbol, FLAT_DEADLINE_S
            )

    @property
    def flattening(self) -> bool:
        return self._flatten is not None

    def poll_flatten(self) -> bool | None:
        """True once flat with no place in flight, False to retry, None while under way.

        A cancel-all never marks rows CANCELED: each order stays the worker's
        until its engine event (or the listing) says it is final (D22). A place
        that was in flight during the flatten may come alive after its listing,
        so such a flatten is not complete and runs again.
        """
        if self._flatten is None or not self._flatten.done():
            return None
        result = self._flatten.result()
        self._flatten = None
        raced = self._flatten_raced or self._batch is not None
        self._flatten_raced = False
        if result.flat and not raced:
            self.flat_confirmed = True
            return True
        log.error("cancel-all not confirmed yet; retrying", extra={"symbol": self._trader.symbol})
        return False

    def close(self) -> None:
        self._background.shutdown(wait=False, cancel_futures=True)


def _reraise(exc: BaseException) -> None:
    raise exc


def _timeout(what: str, elapsed_s: float) -> KillDecision:
    return KillDecision(
        RiskTrigger.RESPONSE_TIMEOUT,
        f"{what}: no answer within the budget ({elapsed_s * 1000:.0f} ms)",
    )
