"""The simulator's own admin endpoint: fault knobs, instrument lifecycle, market control.

Not a TradeX contract: tests and demos use it to provoke from outside what the
service must survive (ARCHITECTURE D21). Errors use the same {error: {code,
message}} body as the Order Service. Routes:

    GET    /health                            200 {ready: true} once ready, 503 before
    GET    /v1/faults                         the knobs in force
    POST   /v1/faults                         set some knobs: {order_latency_ms, reject_rate,
                                              refuse_connections, unavailable, feed_paused,
                                              paused_symbols,
                                              metadata_unavailable, place_hold_ms,
                                              place_answer_delay_ms, engine_event_delay_ms,
                                              delay_symbols}: see faults.py
    DELETE /v1/faults                         every knob back to healthy
    GET    /v1/pending                        {held_places, delayed_events}: what the place
                                              hold and event delay still hold (0, 0: drained)
    GET    /v1/instruments                    every market: status, mid, touch, sequence, params
    POST   /v1/instruments                    list one (instrument fields + mid + market
                                              params): md.instrument.created.v1
    POST   /v1/instruments/generate           {count, msgs_per_s?, prefix?}: list generated
                                              instruments 1..count not listed yet
                                              (SIM0001USDT...; config.py), each announced:
                                              200 {created: [symbols], listed: total}
    PATCH  /v1/instruments/{symbol}           tick/lot/min notional/...: md.instrument.updated.v1
    POST   /v1/instruments/{symbol}/halt      {reason?}: HALTED, md.instrument.halt.v1
    POST   /v1/instruments/{symbol}/resume    {reason?}: TRADING, md.instrument.resume.v1
    GET    /v1/markets/{symbol}               mid, touch, sequence, params
    PATCH  /v1/markets/{symbol}               {msgs_per_s, volatility_bps, jump_probability, ...}
    POST   /v1/markets/{symbol}/move          {mid} or {bps}: jump there, trading through
    POST   /v1/markets/{symbol}/snapshot      send a book snapshot now
    POST   /v1/markets/{symbol}/gap           {count?}: skip sequence numbers (a feed gap)
    GET    /v1/orders?account_id=&symbol=&status=   the venue's orders, without injected faults,
                                              each with received_ns: the wall clock
                                              (time.time_ns) when the Order Service began
                                              handling its POST /v1/orders
    GET    /v1/log?account_id=                read-only order and fill log for checkers:
                                              {now_ms, orders: [... created_ts_ms,
                                              closed_ts_ms (null: resting), received_ns],
                                              fills: [engine FILL records of those orders]}
"""

from __future__ import annotations

import re
from collections.abc import Callable
from decimal import Decimal

from mmsvc.devstack.exchange import config as cfg
from mmsvc.devstack.exchange.faults import FaultError, Faults
from mmsvc.devstack.exchange.market import BPS
from mmsvc.devstack.exchange.venue import Venue, VenueError
from mmsvc.devstack.exchange.web import HttpError, Request, Response

Handler = Callable[[Request, str], Response]
_SYMBOL_PATH = re.compile(r"^/v1/(instruments|markets)/([^/]+)(?:/([a-z-]+))?$")


class AdminApp:
    """Routes of the admin endpoint; ``on_faults`` applies knobs that live outside the venue."""

    def __init__(
        self, venue: Venue, on_faults: Callable[[Faults], None], ready: Callable[[], bool]
    ) -> None:
        self.venue = venue
        self.on_faults = on_faults
        self.ready = ready
        self.routes: dict[tuple[str, str, str | None], Handler] = {
            ("POST", "instruments", "halt"): self._halt,
            ("POST", "instruments", "resume"): self._resume,
            ("PATCH", "instruments", None): self._update_instrument,
            ("GET", "markets", None): lambda _r, symbol: Response(200, venue.market_view(symbol)),
            ("PATCH", "markets", None): self._retune,
            ("POST", "markets", "move"): self._move,
            ("POST", "markets", "snapshot"): lambda _r, s: Response(200, venue.publish_snapshot(s)),
            ("POST", "markets", "gap"): self._gap,
        }
        self.fixed_routes: dict[tuple[str, str], Callable[[Request], Response]] = {
            ("GET", "/v1/pending"): lambda _r: Response(200, venue.pending()),
            ("GET", "/v1/instruments"): lambda _r: self._list_instruments(),
            ("POST", "/v1/instruments"): self._create,
            ("POST", "/v1/instruments/generate"): self._generate,
            ("GET", "/v1/orders"): self._orders,
            ("GET", "/v1/log"): lambda r: Response(200, venue.log(r.query.get("account_id"))),
        }

    def __call__(self, request: Request) -> Response:
        """Answer one admin request."""
        try:
            return self._dispatch(request)
        except VenueError as exc:
            raise HttpError(exc.status, exc.code, exc.message) from exc
        except (cfg.ConfigError, FaultError) as exc:
            raise HttpError(400, "INVALID_REQUEST", str(exc)) from exc

    def _dispatch(self, request: Request) -> Response:
        method, path = request.method, request.path
        if path == "/health":
            return Response(200 if self.ready() else 503, {"ready": self.ready()})
        if path == "/v1/faults":
            return self._faults(request)
        fixed = self.fixed_routes.get((method, path))
        if fixed is not None:
            return fixed(request)
        match = _SYMBOL_PATH.match(path)
        handler = match and self.routes.get((method, match.group(1), match.group(3)))
        if not match or handler is None:
            raise HttpError(404, "NOT_FOUND", f"no route {method} {path}")
        return handler(request, match.group(2))

    def _orders(self, request: Request) -> Response:
        q = request.query
        orders = self.venue.list_orders(
            q.get("account_id"), q.get("symbol"), q.get("status"), received=True
        )
        return Response(200, {"orders": orders})

    def _faults(self, request: Request) -> Response:
        if request.method == "GET":
            return Response(200, self.venue.current_faults().as_json())
        if request.method not in ("POST", "DELETE"):
            raise HttpError(405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed")
        update = request.json_object() if request.method == "POST" else None
        faults = self.venue.set_faults(update)
        self.on_faults(faults)
        return Response(200, faults.as_json())

    def _list_instruments(self) -> Response:
        views = [self.venue.market_view(spec.symbol) for spec in self.venue.instruments()]
        return Response(200, {"instruments": views})

    def _create(self, request: Request) -> Response:
        body = request.json_object()
        spec = cfg.parse_instrument(body)
        params = cfg.parse_market(body, spec)
        self.venue.create_instrument(spec, params)
        return Response(201, self.venue.market_view(spec.symbol))

    def _generate(self, request: Request) -> Response:
        body = request.json_object()
        unknown = set(body) - {"count", "msgs_per_s", "prefix"}
        if "count" not in body or unknown:
            raise HttpError(400, "INVALID_REQUEST", "give count, optionally msgs_per_s and prefix")
        created = self.venue.generate_instruments(
            body["count"], body.get("prefix"), body.get("msgs_per_s")
        )
        return Response(200, {"created": created, "listed": len(self.venue.instruments())})

    def _update_instrument(self, request: Request, symbol: str) -> Response:
        allowed = {"base_asset", "quote_asset", "kind", "tick_size", "lot_size", "min_notional"}
        body = request.json_object()
        if not body or set(body) - allowed:
            raise HttpError(400, "INVALID_REQUEST", f"give one or more of {sorted(allowed)}")
        self.venue.update_instrument(symbol, body)
        return Response(200, self.venue.market_view(symbol))

    def _halt(self, request: Request, symbol: str) -> Response:
        return self._set_status(request, symbol, "HALTED")

    def _resume(self, request: Request, symbol: str) -> Response:
        return self._set_status(request, symbol, "TRADING")

    def _set_status(self, request: Request, symbol: str, status: str) -> Response:
        reason = request.json_object(required=False).get("reason")
        if reason is not None and not isinstance(reason, str):
            raise HttpError(400, "INVALID_REQUEST", "reason must be a string")
        self.venue.set_status(symbol, status, reason)
        return Response(200, self.venue.market_view(symbol))

    def _retune(self, request: Request, symbol: str) -> Response:
        return Response(200, self.venue.retune(symbol, request.json_object()))

    def _move(self, request: Request, symbol: str) -> Response:
        body = request.json_object()
        if ("mid" in body) == ("bps" in body):
            raise HttpError(400, "INVALID_REQUEST", "give exactly one of mid or bps")
        if "mid" in body:
            mid = cfg.decimal(body["mid"], "mid")
        else:
            current = Decimal(self.venue.market_view(symbol)["mid"])
            mid = current * (1 + cfg.decimal(body["bps"], "bps") * BPS)
        if mid <= 0:
            raise HttpError(400, "INVALID_REQUEST", "the mid must stay positive")
        return Response(200, self.venue.move(symbol, mid))

    def _gap(self, request: Request, symbol: str) -> Response:
        count = request.json_object(required=False).get("count", 1)
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise HttpError(400, "INVALID_REQUEST", "count must be a positive integer")
        return Response(200, self.venue.skip_deltas(symbol, count))
