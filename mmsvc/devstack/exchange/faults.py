"""The simulator's fault knobs, set over its admin endpoint (``POST /v1/faults``).

Reliability tests provoke the service's kill switches from outside through
these (ARCHITECTURE D21): Order Service latency and rejects, refused
connections, a paused market data feed, an unavailable Metadata Service.
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
    feed_paused: bool = False
    paused_symbols: tuple[str, ...] = field(default=())
    metadata_unavailable: bool = False

    def feed_paused_for(self, symbol: str) -> bool:
        """Whether ``symbol``'s market data is held back."""
        return self.feed_paused or symbol in self.paused_symbols

    def as_json(self) -> dict[str, Any]:
        """The knobs as the admin endpoint shows them."""
        view = asdict(self)
        view["paused_symbols"] = list(self.paused_symbols)
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
    if name in ("refuse_connections", "feed_paused", "metadata_unavailable"):
        if not isinstance(value, bool):
            raise FaultError(f"{name} must be true or false")
        return value
    if name == "paused_symbols":
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            raise FaultError("paused_symbols must be a list of symbols")
        return tuple(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultError(f"{name} must be a number")
    if name == "reject_rate" and not 0 <= value <= 1:
        raise FaultError("reject_rate must be within [0, 1]")
    if value < 0:
        raise FaultError(f"{name} must not be negative")
    return float(value)
