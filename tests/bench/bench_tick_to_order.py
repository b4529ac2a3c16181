"""Tick-to-order latency with 10 ACTIVE symbols: market move -> first new order at the venue (D20).

The whole service runs as in production (supervisor with 10 worker processes,
outbox relay), against its own broker, registry, scratch database and an
exchange simulator listing 10 instruments. Every symbol is enabled over the
control channel and quotes one level a side (base_spread_bps 60,
price_threshold_bps 5, quote_interval_ms 100, volatility multiplier off).

A sample: ``POST /v1/markets/{symbol}/move`` on the simulator's admin
endpoint, alternately +25 and -25 bps (more than price_threshold_bps, so the
quotes must move), symbols in turn, one move every 30-90 ms at random (so the
moves keep no fixed phase against the workers' timers): the same symbol moves
every ~600 ms, never sooner than 300 ms, much wider than quote_interval_ms.
The move re-centres the simulated book and trades at its new touch, inside our
quotes (half spread 30 bps > 25), so nothing of ours fills: the requote is the
price rule's alone. The simulated markets have no random walk and no jumps, so no
order comes from anything but the moves.

Latency: from just before the move request (the bench's wall clock) to the
first NEW order of that symbol the simulator received after it
(``received_ns``, its wall clock when it began handling ``POST /v1/orders``;
same host, same clock). It is split at the worker's decision, the now() of the
transaction that wrote the order's PENDING row (D10): move -> decision covers
the simulator publishing the book, the broker, the supervisor's routing, the
worker's decode, its wait for a requote slot and its decision; decision ->
venue covers the PENDING rows' commit and the HTTP request.

Floors measured in the same run, between the samples: the bare round trip of
one ``POST /v1/orders`` from this process to the simulator (a keep-alive
session, as a worker uses, for an account of its own far from the touch), the
move request's own round trip, and when the move's book delta reached a plain
consumer of our own (the Kafka leg). KILL_SWITCH_RESPONSE_TIMEOUT_MS is 250
ms, not its default 50 ms (RESPONSE_TIMEOUT_MS says why); the requests that
took longer than 50 ms and any kill during the run are reported.
"""

from __future__ import annotations

import random
import statistics
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

from mmsvc.adapters.db.records import ConfigFields
from tests.bench._service import (
    Move,
    TickProbe,
    Venue,
    decided,
    service_env,
    slow_order_requests,
    start_service,
    states,
)
from tests.bench._stack import SYMBOLS, BenchStack, exchange_toml, load_average

SAMPLES = 200  # per series
WARMUP = 20  # moves before the samples, not counted
MOVE_BPS = 25
# Between moves, at random (so the moves do not keep one phase against the
# workers' requote timer); the same symbol moves every ~600 ms, never sooner
# than 10 x 30 ms, against a quote_interval_ms of 100.
SPACING_S = (0.03, 0.09)
# Not the default 50 ms: on this shared 2-core machine an order request now and
# then takes longer (3 of 10 symbols HALTED with RESPONSE_TIMEOUT in one run at
# load average ~4), which would end the run with symbols missing. The budget
# only decides the kill; it changes no latency measured here. How many requests
# took over 50 ms (a kill with the default) is reported from the workers' own
# mm_order_placement_latency_seconds.
RESPONSE_TIMEOUT_MS = 250
QUOTE_INTERVAL_MS = 100
PRICE_THRESHOLD_BPS = 5
# Half the spread (30 bps) wider than a move: a move never trades through our
# quotes, so no fill (and no fill-driven requote) mixes into the figure. With
# 10 bps every move fills the crossed quote, and the service's requote on that
# fill, made on a book the move has not reached yet, is rejected post-only: five
# moves and REJECT_STORM halts the symbol (see the bench's report).
BASE_SPREAD_BPS = 60
GOAL = "p50 < 5 ms, p99 < 25 ms (issue 5)"

# Quiet markets: no random walk, no jumps, a touch 1 tick from the mid (well
# inside our half spread, so the feed's own trades never reach our quotes).
MARKET = {"volatility_bps": 0.0, "jump_probability": 0.0, "half_spread_ticks": 1}


def _config() -> ConfigFields:
    return ConfigFields(
        base_spread_bps=Decimal(BASE_SPREAD_BPS),
        price_threshold_bps=Decimal(PRICE_THRESHOLD_BPS),
        quote_interval_ms=int(QUOTE_INTERVAL_MS),
        volatility_multiplier=False,
        num_levels=1,
        order_size_usdt=Decimal(100),
    )


@dataclass
class Series:
    """The moves: their times and the round trips measured beside them."""

    moves: list[Move] = field(default_factory=list)
    move_rtt: list[float] = field(default_factory=list)
    post_rtt: list[float] = field(default_factory=list)


def measure(venue: Venue, bench_account: str) -> Series:
    """WARMUP + SAMPLES moves, with the move's and a bare POST's round trips (ms)."""
    series = Series()
    moves: list[Move] = []
    direction = dict.fromkeys(SYMBOLS, 1)
    rng = random.Random(7)
    next_at = time.monotonic()
    for i in range(WARMUP + SAMPLES):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        bps = MOVE_BPS * direction[symbol]
        direction[symbol] = -direction[symbol]
        time.sleep(max(0.0, next_at - time.monotonic()))
        gap = rng.uniform(*SPACING_S)
        next_at += gap
        t0 = time.time_ns()
        sequence = venue.move(symbol, bps)
        t1 = time.time_ns()
        moves.append(Move(symbol, t0, sequence))
        # The baseline POST, two thirds into the slot (under the same load).
        time.sleep(max(0.0, next_at - gap / 3 - time.monotonic()))
        p0 = time.perf_counter_ns()
        venue.place_far_bid(bench_account, "BTCUSDT", "30000.0", "0.001")
        p1 = time.perf_counter_ns()
        if i % 10 == 9:  # keep the venue's book of resting orders small
            venue.cancel_all(bench_account)
        if i >= WARMUP:
            series.move_rtt.append((t1 - t0) / 1e6)
            series.post_rtt.append((p1 - p0) / 1e6)
    series.moves = moves[WARMUP:]
    return series


class Arrival(NamedTuple):
    """One of our orders as the simulator received it."""

    received_ns: int
    client_order_id: str


def orders_received(orders: list[dict[str, Any]]) -> dict[str, list[Arrival]]:
    """When the simulator received each of our orders, by symbol, in order."""
    received: dict[str, list[Arrival]] = {}
    for order in orders:
        arrival = Arrival(int(order["received_ns"]), order["client_order_id"])
        received.setdefault(order["symbol"], []).append(arrival)
    for arrivals in received.values():
        arrivals.sort()
    return received


@dataclass
class Legs:
    """Per move, ms from the move request to the first new order, and where it went."""

    total: list[float] = field(default_factory=list)
    to_decision: list[float] = field(default_factory=list)  # move -> PENDING row written
    decision_to_venue: list[float] = field(default_factory=list)  # commit + HTTP request
    missing: int = 0


def legs(moves: Sequence[Move], received: dict[str, list[Arrival]], rows: dict[str, int]) -> Legs:
    """The first new order of each move's symbol after it (and before its next move)."""
    found = Legs()
    for index, (symbol, t0, _) in enumerate(moves):
        later = (m.t0_ns for m in moves[index + 1 :] if m.symbol == symbol)
        until = next(later, t0 + 1_000_000_000)
        first = next((a for a in received.get(symbol, []) if a.received_ns > t0), None)
        if first is None or first.received_ns > until:
            found.missing += 1
            continue
        found.total.append((first.received_ns - t0) / 1e6)
        decision = rows.get(first.client_order_id)
        if decision is not None:
            found.to_decision.append((decision - t0) / 1e6)
            found.decision_to_venue.append((first.received_ns - decision) / 1e6)
    return found


def same_symbol_gap_ms(moves: Sequence[Move]) -> tuple[float, float]:
    """The shortest and the median time between two moves of one symbol."""
    last: dict[str, int] = {}
    gaps = []
    for symbol, t0, _ in moves:
        if symbol in last:
            gaps.append((t0 - last[symbol]) / 1e6)
        last[symbol] = t0
    return min(gaps), statistics.median(gaps)


def _pct(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _dist(values: Sequence[float]) -> str:
    if not values:
        return "no data"
    return (
        f"p50 {statistics.median(values):.2f} ms, p99 {_pct(values, 0.99):.2f} ms, "
        f"max {max(values):.2f} ms (n={len(values)})"
    )


def run() -> dict[str, object]:
    """Start everything, enable 10 symbols, move markets, measure, stop everything."""
    started = time.monotonic()
    load_before = load_average()
    with BenchStack("tick") as bench:
        kafka = bench.broker()
        registry = bench.registry()
        config = bench.run_dir / "exchange.toml"
        config.write_text(exchange_toml(**MARKET))
        urls = bench.exchange(kafka, registry, config)
        env = service_env(bench, urls, kafka, registry, _config())
        env["KILL_SWITCH_RESPONSE_TIMEOUT_MS"] = str(RESPONSE_TIMEOUT_MS)
        venue = Venue(urls, env["SYSTEM_ACCOUNT_ID"])
        bench_account = str(uuid.uuid4())
        probe = TickProbe(kafka, registry)
        try:
            start_service(bench, env, venue)
            ready_s = time.monotonic() - started
            probe.start()
            series = measure(venue, bench_account)
            time.sleep(1.0)  # the last moves' orders
            received = orders_received(venue.our_orders())
            rows = decided(env["POSTGRES_URL"])
            slow, requests_made = slow_order_requests(env["PROMETHEUS_MULTIPROC_DIR"])
            final = states(env["MMSVC_CONTROL_ENDPOINT"])
            venue.cancel_all(bench_account)
        finally:
            probe.stop()
            venue.close()
    figures = report(series, legs(series.moves, received, rows), probe)
    figures["order_requests_over_50ms"] = (
        f"{slow} of {requests_made} (each a RESPONSE_TIMEOUT kill with the default budget)"
    )
    halted = {s: v for s, v in final.items() if not v.startswith("ACTIVE")}
    figures["states_after"] = "all ACTIVE" if not halted else f"NOT ACTIVE: {halted}"
    figures["load_average"] = f"before {load_before}, after {load_average()}"
    figures["service_ready_s"] = round(ready_s, 1)
    figures["bench_took_s"] = round(time.monotonic() - started, 1)
    return figures


def report(series: Series, found: Legs, probe: TickProbe) -> dict[str, object]:
    """The figures, the floors beside them, and how they were taken."""
    total = found.total
    tick_seen = probe.latencies(series.moves)
    gap_min, gap_p50 = same_symbol_gap_ms(series.moves)
    p50 = statistics.median(total) if total else float("nan")
    p99 = _pct(total, 0.99) if total else float("nan")
    post, move = series.post_rtt, series.move_rtt
    return {
        "summary": (
            f"tick-to-order p50 {p50:.2f} ms, p99 {p99:.2f} ms | floor: bare POST /v1/orders "
            f"p50 {statistics.median(post):.2f} ms, move request p50 "
            f"{statistics.median(move):.2f} ms, delta at a bare consumer p50 "
            f"{statistics.median(tick_seen):.2f} ms"
        ),
        "tick_to_order": _dist(total),
        "tick_to_order_p50_ms": round(p50, 2),
        "tick_to_order_p99_ms": round(p99, 2),
        "tick_to_order_max_ms": round(max(total), 2) if total else None,
        "goal": GOAL,
        "baseline_bare_post_order_rtt": _dist(post),
        "baseline_move_request_rtt": _dist(move),
        "baseline_delta_at_bare_consumer": _dist(tick_seen),
        "leg_move_to_decision": _dist(found.to_decision),
        "leg_decision_to_venue": _dist(found.decision_to_venue),
        "samples_without_new_order": found.missing,
        "method": (
            f"{SAMPLES} moves of +-{MOVE_BPS} bps (> price_threshold_bps {PRICE_THRESHOLD_BPS}; "
            f"< half of base_spread_bps {BASE_SPREAD_BPS}: no fills), one every "
            f"{SPACING_S[0] * 1000:.0f}-{SPACING_S[1] * 1000:.0f} ms at random over "
            f"{len(SYMBOLS)} symbols: the same symbol every {gap_p50:.0f} ms (p50; never under "
            f"{gap_min:.0f} ms), wider than quote_interval_ms {QUOTE_INTERVAL_MS}; "
            f"{WARMUP} warm-up moves not counted"
        ),
        "measured": (
            "bench wall clock just before POST /v1/markets/{s}/move -> simulator's received_ns "
            "of the symbol's first new order after it (delta at a bare consumer: the same "
            "start -> a plain consumer of md.orderbook.delta.v1 in the bench process; decision: "
            "the now() of the transaction that wrote the order's PENDING row, D10)"
        ),
        "active_symbols": len(SYMBOLS),
        "kill_switch_response_timeout_ms": (
            f"{RESPONSE_TIMEOUT_MS} (not the default 50: see RESPONSE_TIMEOUT_MS in this module)"
        ),
    }
