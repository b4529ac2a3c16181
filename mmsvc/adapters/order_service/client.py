"""The Order Service HTTP client (CONTRACTS.md "Order Service").

Every operation returns a frozen result whose `outcome` says what is known
about the order afterwards; expected failures (rejects, timeouts, refused
connections, 5xx) are results, never exceptions. Shadow mode (ARCHITECTURE
D18) is the caller's business: this client always sends.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextvars import copy_context
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum
from types import TracebackType
from typing import Any
from urllib.parse import quote

import requests
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection

from mmsvc.config import Settings
from mmsvc.domain.decimals import decimal_text

ACCOUNT_TYPE = "SYSTEM_MARKET_MAKER"
SIDES = frozenset({"BUY", "SELL"})
TIMES_IN_FORCE = frozenset({"GTC", "POST_ONLY"})


class Outcome(StrEnum):
    """What a call established; each result type documents the subset it uses."""

    ACCEPTED = "ACCEPTED"
    REJECTED = "REJECTED"
    CANCELED = "CANCELED"
    NOT_FOUND = "NOT_FOUND"
    OK = "OK"
    # The request outlived its timeout: the order is unknown (ARCHITECTURE D10).
    TIMEOUT = "TIMEOUT"
    ERROR = "ERROR"


@dataclass(frozen=True, slots=True)
class PlaceRequest:
    """A LIMIT order to place; side BUY|SELL, time_in_force GTC|POST_ONLY, positive decimals."""

    client_order_id: str
    symbol: str
    side: str
    price: Decimal
    quantity: Decimal
    time_in_force: str = "POST_ONLY"

    def __post_init__(self) -> None:
        if str(self.side) not in SIDES:
            raise ValueError(f"side must be BUY or SELL, not {self.side!r}")
        if str(self.time_in_force) not in TIMES_IN_FORCE:
            raise ValueError(f"time_in_force must be GTC or POST_ONLY, not {self.time_in_force!r}")
        for name in ("price", "quantity"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
                raise ValueError(f"{name} must be a positive finite Decimal, not {value!r}")


@dataclass(frozen=True, slots=True)
class PlaceResult:
    """Outcome ACCEPTED (order_id set), REJECTED (code, message), TIMEOUT or ERROR."""

    outcome: Outcome
    client_order_id: str
    elapsed_s: float
    order_id: str | None = None
    code: str | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class CancelResult:
    """Outcome CANCELED, NOT_FOUND (unknown or already final), TIMEOUT or ERROR."""

    outcome: Outcome
    order_id: str
    elapsed_s: float
    message: str | None = None


@dataclass(frozen=True, slots=True)
class CancelAllResult:
    """Outcome OK with the number canceled, or TIMEOUT or ERROR (canceled is then None)."""

    outcome: Outcome
    elapsed_s: float
    canceled: int | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class OpenOrder:
    """One open order as the Order Service lists it; remaining_quantity when it says."""

    order_id: str
    client_order_id: str
    symbol: str
    side: str
    price: Decimal
    quantity: Decimal
    status: str
    remaining_quantity: Decimal | None = None


@dataclass(frozen=True, slots=True)
class RequestFailure:
    """A read that did not answer: outcome TIMEOUT or ERROR."""

    outcome: Outcome
    elapsed_s: float
    message: str


@dataclass(frozen=True, slots=True)
class BatchResult:
    """Every result of a batch, in the order the cancels and places were given."""

    cancels: tuple[CancelResult, ...]
    places: tuple[PlaceResult, ...]
    elapsed_s: float


@dataclass(frozen=True, slots=True)
class Backoff:
    """Growing pauses between kill retries: initial_s, times factor, at most max_s."""

    initial_s: float = 0.005
    factor: float = 2.0
    max_s: float = 0.25

    def delays(self) -> Iterator[float]:
        """Yield the pauses forever."""
        delay = self.initial_s
        while True:
            yield delay
            delay = min(delay * self.factor, self.max_s)


DEFAULT_BACKOFF = Backoff()


@dataclass(frozen=True, slots=True)
class FlatResult:
    """flat is True only when a listing confirmed no open order; remaining is the last count."""

    flat: bool
    attempts: int
    elapsed_s: float
    remaining: int | None = None


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """One HTTP call's status and decoded body, or its transport failure (TIMEOUT or ERROR)."""

    elapsed_s: float
    status: int | None = None
    body: Any = None
    failure: Outcome | None = None
    message: str | None = None


@dataclass(frozen=True, slots=True)
class PendingBatch:
    """A batch in flight; result() waits for every request and never raises for an outcome."""

    _cancels: tuple[Future[CancelResult], ...]
    _places: tuple[Future[PlaceResult], ...]
    _started: float

    def done(self) -> bool:
        """True when every request of the batch has its result."""
        return all(f.done() for f in self._cancels) and all(f.done() for f in self._places)

    def result(self) -> BatchResult:
        """Wait for every request and return the results in input order."""
        cancels = tuple(f.result() for f in self._cancels)
        places = tuple(f.result() for f in self._places)
        return BatchResult(cancels, places, time.perf_counter() - self._started)


def place_body(req: PlaceRequest, account_id: str, user_id: str) -> dict[str, str]:
    """Return the exact POST /v1/orders body of CONTRACTS.md for a request."""
    return {
        "client_order_id": req.client_order_id,
        "symbol": req.symbol,
        "side": str(req.side),
        "type": "LIMIT",
        "time_in_force": str(req.time_in_force),
        "price": decimal_text(req.price),
        "quantity": decimal_text(req.quantity),
        "account_id": account_id,
        "user_id": user_id,
        "account_type": ACCOUNT_TYPE,
    }


def place_result(req: PlaceRequest, resp: HttpAnswer) -> PlaceResult:
    """Map an HTTP answer to a place outcome (a repeated client_order_id answers the first)."""
    coid, elapsed = req.client_order_id, resp.elapsed_s
    if resp.failure is not None:
        return PlaceResult(resp.failure, coid, elapsed, message=resp.message)
    body = resp.body if isinstance(resp.body, dict) else {}
    if resp.status in (200, 201) and isinstance(body.get("order_id"), str):
        return PlaceResult(Outcome.ACCEPTED, coid, elapsed, order_id=body["order_id"])
    if resp.status in (400, 422):
        code, message = _error_fields(body)
        return PlaceResult(Outcome.REJECTED, coid, elapsed, code=code, message=message)
    return PlaceResult(Outcome.ERROR, coid, elapsed, message=_unexpected(resp))


def cancel_result(order_id: str, resp: HttpAnswer) -> CancelResult:
    """Map an HTTP answer to a cancel outcome: 200 CANCELED, 404 NOT_FOUND."""
    if resp.failure is not None:
        return CancelResult(resp.failure, order_id, resp.elapsed_s, resp.message)
    if resp.status == 200:
        return CancelResult(Outcome.CANCELED, order_id, resp.elapsed_s)
    if resp.status == 404:
        return CancelResult(Outcome.NOT_FOUND, order_id, resp.elapsed_s)
    return CancelResult(Outcome.ERROR, order_id, resp.elapsed_s, _unexpected(resp))


def cancel_all_result(resp: HttpAnswer) -> CancelAllResult:
    """Map an HTTP answer to a cancel-all outcome: 200 {canceled: int} is OK."""
    if resp.failure is not None:
        return CancelAllResult(resp.failure, resp.elapsed_s, message=resp.message)
    canceled = resp.body.get("canceled") if isinstance(resp.body, dict) else None
    if resp.status == 200 and isinstance(canceled, int) and not isinstance(canceled, bool):
        return CancelAllResult(Outcome.OK, resp.elapsed_s, canceled=canceled)
    return CancelAllResult(Outcome.ERROR, resp.elapsed_s, message=_unexpected(resp))


def open_orders_result(resp: HttpAnswer) -> list[OpenOrder] | RequestFailure:
    """Map an HTTP answer to the open orders, or a failure when it is not 200 {orders: [...]}."""
    if resp.failure is not None:
        return RequestFailure(resp.failure, resp.elapsed_s, resp.message or "")
    orders = resp.body.get("orders") if isinstance(resp.body, dict) else None
    if resp.status != 200 or not isinstance(orders, list):
        return RequestFailure(Outcome.ERROR, resp.elapsed_s, _unexpected(resp))
    try:
        return [_open_order(o) for o in orders]
    except (KeyError, TypeError, ArithmeticError, ValueError) as exc:
        return RequestFailure(Outcome.ERROR, resp.elapsed_s, f"malformed order: {exc!r}")


def _open_order(raw: Mapping[str, Any]) -> OpenOrder:
    remaining = raw.get("remaining_quantity")
    return OpenOrder(
        order_id=str(raw["order_id"]),
        client_order_id=str(raw.get("client_order_id", "")),
        symbol=str(raw["symbol"]),
        side=str(raw.get("side", "")),
        price=Decimal(str(raw["price"])),
        quantity=Decimal(str(raw["quantity"])),
        status=str(raw.get("status", "")),
        remaining_quantity=None if remaining is None else Decimal(str(remaining)),
    )


def _error_fields(body: Mapping[str, Any]) -> tuple[str | None, str | None]:
    error = body.get("error")
    if not isinstance(error, dict):
        return None, None
    code, message = error.get("code"), error.get("message")
    return (None if code is None else str(code)), (None if message is None else str(message))


def _unexpected(resp: HttpAnswer) -> str:
    return f"unexpected answer: HTTP {resp.status} {str(resp.body)[:200]}"


class _NoDelayAdapter(HTTPAdapter):
    """One keep-alive connection with TCP_NODELAY and no automatic retry."""

    def __init__(self) -> None:
        super().__init__(pool_connections=1, pool_maxsize=1, max_retries=0)

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        # urllib3 sets TCP_NODELAY by default; pinned here because Nagle's
        # algorithm alone costs ~40 ms, which trips the 50 ms kill switch.
        options = [*HTTPConnection.default_socket_options]
        options.append((socket.IPPROTO_TCP, socket.TCP_NODELAY, 1))
        kwargs["socket_options"] = options
        super().init_poolmanager(*args, **kwargs)


class OrderServiceClient:
    """Places and cancels the market maker's orders; thread-safe, one Session per thread."""

    def __init__(
        self,
        base_url: str,
        account_id: str,
        user_id: str,
        timeout_s: float,
        token: str | None = None,
        pool_size: int = 4,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._account_id = account_id
        self._user_id = user_id
        self._timeout_s = timeout_s
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(pool_size, thread_name_prefix="order-service")

    @classmethod
    def from_settings(
        cls, settings: Settings, timeout_s: float | None = None
    ) -> OrderServiceClient:
        """The client of the service's account, with the spec's response budget by default,
        sending ORDER_SERVICE_TOKEN_FILE's token on every call when one is set."""
        token = settings.order_service_token
        return cls(
            settings.order_service_url,
            settings.system_account_id,
            settings.system_user_id,
            settings.kill_switch_response_timeout_s if timeout_s is None else timeout_s,
            token=None if token is None else token.get_secret_value(),
        )

    def __repr__(self) -> str:
        # Never show the token.
        return f"OrderServiceClient({self._base!r}, account_id={self._account_id!r})"

    def __enter__(self) -> OrderServiceClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop the pool and close every connection."""
        self._pool.shutdown(wait=True)
        with self._lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()

    def place(self, req: PlaceRequest) -> PlaceResult:
        """Place a LIMIT order tagged SYSTEM_MARKET_MAKER; idempotent per client_order_id."""
        body = place_body(req, self._account_id, self._user_id)
        return place_result(req, self._call("POST", "/v1/orders", json=body))

    def cancel(self, order_id: str) -> CancelResult:
        """Cancel one order; NOT_FOUND means it was unknown or already final."""
        path = f"/v1/orders/{quote(order_id, safe='')}"
        return cancel_result(order_id, self._call("DELETE", path))

    def cancel_all(self, symbol: str | None, timeout_s: float | None = None) -> CancelAllResult:
        """Cancel every open order of the account, or of one symbol."""
        body: dict[str, str] = {"account_id": self._account_id}
        if symbol is not None:
            body["symbol"] = symbol
        resp = self._call("POST", "/v1/orders/cancel-all", json=body, timeout_s=timeout_s)
        return cancel_all_result(resp)

    def list_open(
        self, symbol: str | None, timeout_s: float | None = None
    ) -> list[OpenOrder] | RequestFailure:
        """List the account's open orders, of one symbol or all."""
        params = {"account_id": self._account_id, "status": "OPEN"}
        if symbol is not None:
            params["symbol"] = symbol
        return open_orders_result(
            self._call("GET", "/v1/orders", params=params, timeout_s=timeout_s)
        )

    def submit(self, cancels: Sequence[str], places: Sequence[PlaceRequest]) -> PendingBatch:
        """Start cancels and places concurrently on the pool and return at once (D11).

        Each request runs in a copy of the caller's context (a fraction of a
        microsecond), so with tracing on its span is a child of the caller's.
        """
        started = time.perf_counter()
        return PendingBatch(
            tuple(self._pool.submit(copy_context().run, self.cancel, oid) for oid in cancels),
            tuple(self._pool.submit(copy_context().run, self.place, req) for req in places),
            started,
        )

    def execute(self, cancels: Sequence[str], places: Sequence[PlaceRequest]) -> BatchResult:
        """Run cancels and places concurrently on the pool and return every result."""
        return self.submit(cancels, places).result()

    def cancel_until_flat(
        self,
        symbol: str | None,
        deadline_s: float,
        backoff: Backoff = DEFAULT_BACKOFF,
    ) -> FlatResult:
        """Cancel-all and re-list until no open order remains or deadline_s seconds pass (D7)."""
        started = time.perf_counter()
        ends = started + deadline_s
        attempts, remaining = 0, None
        request_timeout = self._timeout_s
        for delay in backoff.delays():
            attempts += 1
            # A kill must finish even on a slow Order Service: each attempt
            # allows twice the time of the previous one, within the deadline (D7).
            budget = max(0.001, min(request_timeout, ends - time.perf_counter()))
            self.cancel_all(symbol, timeout_s=budget)
            listed = self.list_open(symbol, timeout_s=budget)
            if isinstance(listed, list):
                remaining = len(listed)
                if not listed:
                    return FlatResult(True, attempts, time.perf_counter() - started, 0)
            request_timeout *= 2
            if time.perf_counter() + delay >= ends:
                break
            time.sleep(delay)
        return FlatResult(False, attempts, time.perf_counter() - started, remaining)

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            # No ~/.netrc or proxy lookups on every call: the Order Service is
            # configured by ORDER_SERVICE_URL alone, and this is the hot path.
            session.trust_env = False
            session.mount("http://", _NoDelayAdapter())
            session.mount("https://", _NoDelayAdapter())
            session.headers.update(self._headers)
            self._local.session = session
            with self._lock:
                self._sessions.append(session)
        return session

    def _call(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, object] | None = None,
        params: Mapping[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> HttpAnswer:
        timeout = timeout_s if timeout_s is not None else self._timeout_s
        started = time.perf_counter()
        try:
            resp = self._session().request(
                method, self._base + path, json=json, params=params, timeout=timeout
            )
        except requests.Timeout as exc:
            # Connect or read timeout alike: the service did not answer in
            # time, so the order's fate is unknown (D10).
            return HttpAnswer(
                time.perf_counter() - started, failure=Outcome.TIMEOUT, message=repr(exc)
            )
        except requests.RequestException as exc:
            return HttpAnswer(
                time.perf_counter() - started, failure=Outcome.ERROR, message=repr(exc)
            )
        return HttpAnswer(time.perf_counter() - started, resp.status_code, _json_or_text(resp))


def _json_or_text(resp: requests.Response) -> Any:
    try:
        return resp.json()
    except ValueError:
        return resp.text
