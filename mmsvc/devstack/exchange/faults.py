"""The simulator's fault knobs, set over its admin endpoint (``POST /v1/faults``).

Reliability tests provoke the service's kill switches and order races from
outside through these (ARCHITECTURE D21, D22), as an operator's venue would
produce them:

- ``order_latency_ms``: every Order Service call waits this long before it is handled.
- ``reject_rate``: that share of new orders is rejected (422 INJECTED_REJECT).
- ``refuse_connections``: the Order Service closes its port and every open connection.
- ``unavailable``: the Order Service answers every call 503 with the contract's error
  body ({error: {code: "UNAVAILABLE", message}}) and does nothing (an overloaded or
  restarting venue gateway: D25).
- ``feed_paused`` / ``paused_symbols``: market data held back (all, or those symbols).
- ``metadata_unavailable``: the Metadata Service answers UNAVAILABLE.
- ``place_hold_ms``: a ``POST /v1/orders`` is held this long before the order exists
  at the venue (a request stuck in the venue's queue). Meanwhile ``GET /v1/orders``
  does not list it, cancel-all does not cancel it and a DELETE of it is 404; then
  it is created (ACCEPTED on engine.event.v1, or REJECTED) and answered. A client
  that gave up at its budget sees the order come alive late. A retry of the same
  client_order_id during the hold waits for the first and gets its answer: one
  order, never two.
- ``place_answer_delay_ms``: the answer to ``POST /v1/orders`` is written this long
  after the order was created, so its ACCEPTED (and fills) can come before the
  201. With ``place_hold_ms``: created after the hold, answered after both.
- ``engine_event_delay_ms``: every engine.event.v1 record (ACCEPTED, FILL,
  CANCELED, REJECTED) is published this long after it happened, in the order it
  happened: a DELETE is answered 200 before its CANCELED event, a fill's FILL
  can arrive after the 200 of a DELETE sent after the fill.
- ``delay_symbols``: the symbols the three knobs above apply to; empty: every symbol.

Set together, the place hold and the event delay give a slow-to-create venue
whose events also trail its answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any


class FaultError(ValueError):
    """A fault update is malformed; the message says which knob."""


@dataclass(frozen=True, slots=True)
class Faults:
    """The faults in force; the defaults are a healthy exchange."""

    order_latency_ms: float = 0.0
    reject_rate: float = 0.0
    refuse_connections: bool = False
    unavailable: bool = False
    feed_paused: bool = False
    paused_symbols: tuple[str, ...] = field(default=())
    metadata_unavailable: bool = False
    place_hold_ms: float = 0.0
    place_answer_delay_ms: float = 0.0
    engine_event_delay_ms: float = 0.0
    delay_symbols: tuple[str, ...] = field(default=())

    def delayed(self, symbol: str) -> bool:
        """Whether the place hold, answer delay and event delay apply to ``symbol``."""
        return not self.delay_symbols or symbol in self.delay_symbols

    def place_hold_s(self, symbol: str) -> float:
        """How long a new order of ``symbol`` waits before it exists at the venue."""
        return self.place_hold_ms / 1000 if self.delayed(symbol) else 0.0

    def place_answer_delay_s(self, symbol: str) -> float:
        """How long the answer to a new order of ``symbol`` trails its creation."""
        return self.place_answer_delay_ms / 1000 if self.delayed(symbol) else 0.0

    def event_delay_s(self, symbol: str) -> float:
        """How long ``symbol``'s engine events trail what caused them."""
        return self.engine_event_delay_ms / 1000 if self.delayed(symbol) else 0.0

    def feed_paused_for(self, symbol: str) -> bool:
        """Whether ``symbol``'s market data is held back."""
        return self.feed_paused or symbol in self.paused_symbols

    def as_json(self) -> dict[str, Any]:
        """The knobs as the admin endpoint shows them."""
        view = asdict(self)
        view["paused_symbols"] = list(self.paused_symbols)
        view["delay_symbols"] = list(self.delay_symbols)
        return view


def apply_update(current: Faults, update: Mapping[str, Any]) -> Faults:
    """``current`` with the knobs in ``update`` set; FaultError on an unknown or bad knob."""
    known = {f.name for f in fields(Faults)}
    unknown = set(update) - known
    if unknown:
        raise FaultError(f"unknown fault knobs {sorted(unknown)}; known: {sorted(known)}")
    changes: dict[str, Any] = {}
    for name, value in update.items():
        changes[name] = _checked(name, value)
    return replace(current, **changes)


def _checked(name: str, value: Any) -> Any:
    if name in ("refuse_connections", "unavailable", "feed_paused", "metadata_unavailable"):
        if not isinstance(value, bool):
            raise FaultError(f"{name} must be true or false")
        return value
    if name in ("paused_symbols", "delay_symbols"):
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            raise FaultError(f"{name} must be a list of symbols")
        return tuple(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultError(f"{name} must be a number")
    if name == "reject_rate" and not 0 <= value <= 1:
        raise FaultError("reject_rate must be within [0, 1]")
    if value < 0:
        raise FaultError(f"{name} must not be negative")
    return float(value)
