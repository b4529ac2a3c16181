"""The Order Service over HTTP, to CONTRACTS.md: place, cancel, cancel-all, list.

Malformed requests get 400, business rejects 422, both with the contract's
body {error: {code, message}}; business rejects also emit a REJECTED engine
event. Fills are never reported here: they come on engine.event.v1. The
``order_latency_ms`` fault delays every call before it is handled; a place is
also subject to ``place_hold_ms`` (before the order exists, in venue.py) and
``place_answer_delay_ms`` (after it exists, here): see faults.py.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from mmsvc.devstack.exchange.config import SYMBOL_RE
from mmsvc.devstack.exchange.venue import OrderRequest, Venue, VenueError
from mmsvc.devstack.exchange.web import HttpError, Request, Response

_ORDER_PATH = re.compile(r"^/v1/orders/([^/]+)$")
_TEXT_FIELDS = ("client_order_id", "symbol", "account_id", "user_id", "account_type")
_STATUSES = ("OPEN", "NEW", "PARTIALLY_FILLED", "FILLED", "CANCELED", "REJECTED")


class OrderServiceApp:
    """The Order Service's routes over a Venue; optional Bearer check, injected latency."""

    def __init__(self, venue: Venue, tokens: tuple[str, ...] = ()) -> None:
        self.venue = venue
        self.tokens = frozenset(tokens)

    def __call__(self, request: Request) -> Response:
        """Answer one request, after the latency fault in force; 503 while ``unavailable``."""
        faults = self.venue.current_faults()
        if faults.order_latency_ms:
            time.sleep(faults.order_latency_ms / 1000)
        if faults.unavailable:
            raise HttpError(503, "UNAVAILABLE", "the Order Service is unavailable (a fault)")
        self._authorize(request)
        route = self._route(request)
        try:
            return route(request)
        except VenueError as exc:
            raise HttpError(exc.status, exc.code, exc.message) from exc

    def _route(self, request: Request) -> Callable[[Request], Response]:
        path, method = request.path, request.method
        if path == "/v1/orders":
            if method == "POST":
                return self._place
            if method == "GET":
                return self._list
        elif path == "/v1/orders/cancel-all":
            if method == "POST":
                return self._cancel_all
        elif _ORDER_PATH.match(path):
            if method == "DELETE":
                return self._cancel
        else:
            raise HttpError(404, "NOT_FOUND", f"no route {path}")
        raise HttpError(405, "METHOD_NOT_ALLOWED", f"{method} is not allowed on {path}")

    def _authorize(self, request: Request) -> None:
        if not self.tokens:
            return
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or token.strip() not in self.tokens:
            raise HttpError(401, "UNAUTHENTICATED", "a valid Bearer token is required")

    def _place(self, request: Request) -> Response:
        order = parse_order(request.json_object(), request.received_ns)
        status, body = self.venue.place(order)
        delay_s = self.venue.place_answer_delay_s(order.symbol)
        if delay_s:
            time.sleep(delay_s)  # the order exists; its answer is late (a fault)
        return Response(status, body)

    def _cancel(self, request: Request) -> Response:
        match = _ORDER_PATH.match(request.path)
        if match is None:  # routed here only on a match
            raise LookupError(f"no order id in {request.path!r}")
        return Response(200, self.venue.cancel(match.group(1)))

    def _cancel_all(self, request: Request) -> Response:
        body = request.json_object()
        account_id, symbol = body.get("account_id"), body.get("symbol")
        if not isinstance(account_id, str) or not account_id:
            raise HttpError(400, "INVALID_REQUEST", "account_id is required")
        if symbol is not None and not isinstance(symbol, str):
            raise HttpError(400, "INVALID_REQUEST", "symbol must be a string")
        return Response(200, {"canceled": self.venue.cancel_all(account_id, symbol)})

    def _list(self, request: Request) -> Response:
        status = request.query.get("status")
        if status is not None and status not in _STATUSES:
            raise HttpError(400, "INVALID_REQUEST", f"status must be one of {_STATUSES}")
        orders = self.venue.list_orders(
            request.query.get("account_id"), request.query.get("symbol"), status
        )
        return Response(200, {"orders": orders})


def parse_order(body: dict[str, Any], received_ns: int = 0) -> OrderRequest:
    """A well-formed order request, or HttpError 400 naming what is wrong."""
    for name in (*_TEXT_FIELDS, "side", "type", "time_in_force", "price", "quantity"):
        if not isinstance(body.get(name), str) or not body[name]:
            raise HttpError(400, "INVALID_REQUEST", f"{name} is required and must be a string")
    if not SYMBOL_RE.match(body["symbol"]) or len(body["symbol"]) > 32:
        raise HttpError(400, "INVALID_SYMBOL", f"symbol {body['symbol']!r} is malformed")
    _one_of(body, "side", ("BUY", "SELL"))
    _one_of(body, "type", ("LIMIT",))
    _one_of(body, "time_in_force", ("GTC", "POST_ONLY"))
    return OrderRequest(
        client_order_id=body["client_order_id"],
        symbol=body["symbol"],
        side=body["side"],
        time_in_force=body["time_in_force"],
        price=_positive_decimal(body, "price"),
        quantity=_positive_decimal(body, "quantity"),
        account_id=body["account_id"],
        user_id=body["user_id"],
        account_type=body["account_type"],
        received_ns=received_ns,
    )


def _one_of(body: dict[str, Any], name: str, allowed: tuple[str, ...]) -> None:
    if body[name] not in allowed:
        raise HttpError(400, f"INVALID_{name.upper()}", f"{name} must be one of {allowed}")


def _positive_decimal(body: dict[str, Any], name: str) -> Decimal:
    try:
        value = Decimal(body[name])
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value <= 0:
        raise HttpError(400, f"INVALID_{name.upper()}", f"{name} must be a positive decimal string")
    return value
