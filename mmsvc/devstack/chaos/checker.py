"""The chaos run's four checks, as pure functions over the run's logs (issue 15).

Inputs, all plain records: the simulator's order and fill log of our account
(``GET /v1/log``), the epoch each ``mm_orders`` row was written under (D32),
the event ids of ``mm_fills``, the lease samples the driver took (epoch ->
owner and when it was taken), the driver's disruptions (what it did, when,
and which symbols the victim owned under which epoch) and the final states.

(a) ``overlaps``: windows in which orders of two epochs of one symbol rested at
    the venue at once. Zero is the rule; the one exception is an order of the
    old epoch that reached the venue before the new epoch's lease was taken
    (so before the old lease's deadline) and came alive only after it: the new
    owner must have it gone within ``LATE_ALIVE_MAX_MS``.
(b) ``match_fills``: every venue fill of our account is one mm_fills row.
(c) ``takeovers``: from a disruption to each victim symbol's first order of a
    newer epoch alive at the venue.
(d) ``stuck``: symbols not ACTIVE at the end that the run did not halt.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

LATE_ALIVE_MAX_MS = 2_000
TAKEOVER_P99_MAX_S = 10.0


@dataclass(frozen=True, slots=True)
class VenueOrder:
    """One order of our account as the venue saw it: alive from ``created_ms`` to ``closed_ms``."""

    client_order_id: str
    symbol: str
    created_ms: int
    closed_ms: int | None  # None: still resting when the log was taken
    received_ms: int  # when the Order Service began handling its POST

    @classmethod
    def from_log(cls, record: Mapping[str, Any]) -> VenueOrder:
        """From one order of the simulator's ``GET /v1/log``."""
        closed = record.get("closed_ts_ms")
        return cls(
            client_order_id=str(record["client_order_id"]),
            symbol=str(record["symbol"]),
            created_ms=int(record["created_ts_ms"]),
            closed_ms=None if closed is None else int(closed),
            received_ms=int(record.get("received_ns") or 0) // 1_000_000,
        )


@dataclass(frozen=True, slots=True)
class Overlap:
    """A window in which orders of more than one epoch of ``symbol`` rested at once."""

    symbol: str
    start_ms: int
    end_ms: int
    epochs: tuple[int, ...]
    client_order_ids: tuple[str, ...]
    late_alive: bool  # the allowed case: an old order that came alive late, gone in time

    @property
    def duration_ms(self) -> int:
        """How long the two owners' orders rested together."""
        return self.end_ms - self.start_ms


def overlaps(
    orders: Iterable[VenueOrder],
    epoch_of: Mapping[str, int],
    taken_at_ms: Mapping[tuple[str, int], int],
    end_ms: int,
) -> list[Overlap]:
    """Every window of two epochs resting at once, per symbol, in time order.

    ``epoch_of`` maps client_order_id to its row's epoch (orders without one
    are the caller's ``orphans``); ``taken_at_ms`` is when each (symbol, epoch)
    lease was taken, used to tell a late-alive old order from a violation; an
    order still open rests until ``end_ms``.
    """
    by_symbol: dict[str, list[VenueOrder]] = {}
    for order in orders:
        if order.client_order_id in epoch_of:
            by_symbol.setdefault(order.symbol, []).append(order)
    found: list[Overlap] = []
    for symbol, of_symbol in sorted(by_symbol.items()):
        found += _sweep(symbol, of_symbol, epoch_of, taken_at_ms, end_ms)
    return found


def _sweep(
    symbol: str,
    orders: list[VenueOrder],
    epoch_of: Mapping[str, int],
    taken_at_ms: Mapping[tuple[str, int], int],
    end_ms: int,
) -> list[Overlap]:
    # (time, 0 = close before 1 = open at the same millisecond, order): an order
    # canceled at t and one created at t never rested together.
    events: list[tuple[int, int, VenueOrder]] = []
    for order in orders:
        closed = end_ms if order.closed_ms is None else order.closed_ms
        if closed > order.created_ms:
            events += [(order.created_ms, 1, order), (closed, 0, order)]
    events.sort(key=lambda e: (e[0], e[1], e[2].client_order_id))
    resting: dict[str, VenueOrder] = {}
    window: list[VenueOrder] = []
    start = 0
    found: list[Overlap] = []
    for at, opens, order in events:
        if opens:
            resting[order.client_order_id] = order
        else:
            resting.pop(order.client_order_id, None)
        mixed = len({epoch_of[o.client_order_id] for o in resting.values()}) > 1
        if mixed and not window:
            start, window = at, list(resting.values())
        elif mixed:
            window += [o for o in resting.values() if o not in window]
        elif window:
            found.append(_classify(symbol, start, at, window, epoch_of, taken_at_ms))
            window = []
    if window:
        found.append(_classify(symbol, start, end_ms, window, epoch_of, taken_at_ms))
    return found


def _classify(
    symbol: str,
    start: int,
    end: int,
    window: list[VenueOrder],
    epoch_of: Mapping[str, int],
    taken_at_ms: Mapping[tuple[str, int], int],
) -> Overlap:
    """Late-alive (allowed): every older order was sent before the newest lease began and
    came alive only after it (so the new owner's sweep before its first place could not
    see it), and the window closed within LATE_ALIVE_MAX_MS."""
    epochs = sorted({epoch_of[o.client_order_id] for o in window})
    newest = epochs[-1]
    began = taken_at_ms.get((symbol, newest))
    if began is None:  # no sample of the lease: its first order is the latest it can have begun
        began = min(o.received_ms for o in window if epoch_of[o.client_order_id] == newest)
    old = [o for o in window if epoch_of[o.client_order_id] != newest]
    sent_in_time = all(o.received_ms < began <= o.created_ms for o in old)
    return Overlap(
        symbol,
        start,
        end,
        tuple(epochs),
        tuple(sorted(o.client_order_id for o in window)),
        late_alive=sent_in_time and end - start <= LATE_ALIVE_MAX_MS,
    )


@dataclass(frozen=True, slots=True)
class FillMatch:
    """Venue fills of our account against mm_fills rows, by engine event_id."""

    venue: int
    booked: int
    missing: tuple[str, ...]  # at the venue, no row
    unknown: tuple[str, ...]  # a row the venue never made
    duplicated: tuple[str, ...]  # more than one row

    @property
    def ok(self) -> bool:
        """Equal, each once."""
        return not (self.missing or self.unknown or self.duplicated)


def match_fills(venue_event_ids: Iterable[str], booked_event_ids: Iterable[str]) -> FillMatch:
    """Compare the venue's fills with the booked ones (both up to the same cut-off)."""
    venue = Counter(venue_event_ids)
    booked = Counter(booked_event_ids)
    return FillMatch(
        venue=sum(venue.values()),
        booked=sum(booked.values()),
        missing=tuple(sorted(set(venue) - set(booked))),
        unknown=tuple(sorted(set(booked) - set(venue))),
        duplicated=tuple(sorted(e for e, n in booked.items() if n > 1)),
    )


@dataclass(frozen=True, slots=True)
class Disruption:
    """What the driver did to a host at ``at_ms``, and what that host owned then."""

    kind: str  # kill9, sigstop, restart, join, leave
    host: str
    at_ms: int
    owned: Mapping[str, int] = field(default_factory=dict)  # symbol -> epoch held at at_ms


@dataclass(frozen=True, slots=True)
class Takeover:
    """One victim symbol: seconds until an order of a newer epoch was alive (None: never)."""

    kind: str
    host: str
    symbol: str
    at_ms: int
    seconds: float | None
    # Seconds until the next epoch's lease was taken (None: no sample): the part of
    # ``seconds`` spent before the new owner's worker began (session timeout, rebalance).
    lease_seconds: float | None = None


def takeovers(
    disruptions: Iterable[Disruption],
    orders: Iterable[VenueOrder],
    epoch_of: Mapping[str, int],
    kinds: Sequence[str] = ("kill9", "sigstop"),
    taken_at_ms: Mapping[tuple[str, int], int] | None = None,
) -> list[Takeover]:
    """For each owner death or stop: when each of its symbols quoted again under a new owner."""
    first_alive: dict[str, list[tuple[int, int]]] = {}  # symbol -> [(created, epoch)] sorted
    for order in orders:
        epoch = epoch_of.get(order.client_order_id)
        if epoch is not None:
            first_alive.setdefault(order.symbol, []).append((order.created_ms, epoch))
    for alive in first_alive.values():
        alive.sort()
    found = []
    for event in disruptions:
        if event.kind not in kinds:
            continue
        for symbol, epoch in sorted(event.owned.items()):
            again = next(
                (at for at, e in first_alive.get(symbol, []) if at >= event.at_ms and e > epoch),
                None,
            )
            seconds = None if again is None else (again - event.at_ms) / 1000
            taken = (taken_at_ms or {}).get((symbol, epoch + 1))
            lease = None if taken is None else (taken - event.at_ms) / 1000
            found.append(Takeover(event.kind, event.host, symbol, event.at_ms, seconds, lease))
    return found


def percentile(values: Sequence[float], q: float) -> float:
    """The nearest-rank percentile ``q`` (0-100) of ``values`` (not empty)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def stuck(
    final_states: Mapping[str, str], symbols: Iterable[str], halted_on_purpose: Iterable[str] = ()
) -> dict[str, str]:
    """The run's symbols not ACTIVE at the end, except those it halted on purpose."""
    purposeful = set(halted_on_purpose)
    return {
        s: final_states.get(s, "MISSING")
        for s in sorted(symbols)
        if final_states.get(s) != "ACTIVE" and s not in purposeful
    }
