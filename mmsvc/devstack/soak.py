"""``make soak``: watch the running demo for N minutes with nothing provoked (issue 12, #10).

A quiet ``make run`` (the three demo symbols, load under 1) once halted every
symbol after 7-8 minutes on a KAFKA_LAG kill from nothing: the lag rule took an
event's age for the consumer's lag. A spurious global kill is as bad for the
exchange as a missed one, so this watches the demo as an operator's dashboard
would, from outside: every few seconds it scrapes the service's metrics
endpoint for ``mm_kafka_lag_seconds`` (each topic's maximum over the run),
``mm_kill_switch_total`` and ``mm_worker_restarts_total`` (any increase is a
kill or a death nobody asked for) and ``mm_state_gauge`` (every symbol ACTIVE
at the start stays ACTIVE), with the load average beside them. It prints the
figures, writes them to ``<run dir>/soak/<stamp>.json`` and exits 1 when a
kill, a restart or a state change happened. It changes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from mmsvc.devstack import stack

SCRAPE_EVERY_S = 5.0


@dataclass(frozen=True, slots=True)
class Scrape:
    """The figures of one scrape of the metrics endpoint."""

    lag_s: dict[str, float]
    kills: dict[str, float]  # "symbol/reason" -> count
    restarts: dict[str, float]
    states: dict[str, str]


@dataclass(slots=True)
class Soak:
    """What the run saw: lag maxima, and every kill, restart or state change."""

    started: str
    minutes: float
    scrapes: int = 0
    watched_s: float = 0.0  # less than `minutes` when an event ended the run early
    lag_max_s: dict[str, float] = field(default_factory=dict)
    lag_max_at: dict[str, str] = field(default_factory=dict)
    load_max: float = 0.0
    states_at_start: dict[str, str] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)

    def passed(self) -> bool:
        return not self.events and bool(self.states_at_start)


def parse(text: str) -> Scrape:
    """The soak's figures from the Prometheus text format."""
    lag: dict[str, float] = {}
    kills: dict[str, float] = {}
    restarts: dict[str, float] = {}
    states: dict[str, str] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == "mm_kafka_lag_seconds":
                lag[labels["topic"]] = sample.value
            elif sample.name == "mm_kill_switch_total":
                kills[f"{labels['symbol']}/{labels['reason']}"] = sample.value
            elif sample.name == "mm_worker_restarts_total":
                restarts[labels["symbol"]] = sample.value
            elif sample.name == "mm_state_gauge" and sample.value == 1:
                states[labels["symbol"]] = labels["state"]
    return Scrape(lag, kills, restarts, states)


def changes(before: Scrape, after: Scrape) -> list[str]:
    """Each kill, restart or state change between two scrapes, in words."""
    found = [
        f"kill {key} (+{value - before.kills.get(key, 0.0):g})"
        for key, value in after.kills.items()
        if value > before.kills.get(key, 0.0)
    ]
    found += [
        f"worker restart {symbol}"
        for symbol, value in after.restarts.items()
        if value > before.restarts.get(symbol, 0.0)
    ]
    found += [
        f"{symbol} {before.states.get(symbol)} -> {state}"
        for symbol, state in after.states.items()
        if before.states.get(symbol) not in (None, state)
    ]
    return found


def scrape(url: str) -> Scrape:
    with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - the local dev stack
        return parse(response.read().decode())


def watch(url: str, minutes: float, every_s: float = SCRAPE_EVERY_S) -> Soak:
    """Scrape ``url`` every ``every_s`` for ``minutes``; stop early at the first event."""
    soak = Soak(started=datetime.now(UTC).isoformat(timespec="seconds"), minutes=minutes)
    last = scrape(url)
    soak.states_at_start = dict(last.states)
    began = time.monotonic()
    end = began + minutes * 60
    while time.monotonic() < end:
        time.sleep(every_s)
        now = scrape(url)
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        soak.scrapes += 1
        soak.watched_s = time.monotonic() - began
        soak.load_max = max(soak.load_max, os.getloadavg()[0])
        for topic, lag in now.lag_s.items():
            if lag > soak.lag_max_s.get(topic, -1.0):
                soak.lag_max_s[topic], soak.lag_max_at[topic] = lag, stamp
        soak.events += [f"{stamp} {event}" for event in changes(last, now)]
        if soak.events:
            break
        last = now
    return soak


def report(soak: Soak) -> str:
    watched = f"{soak.watched_s / 60:.1f} of {soak.minutes:g} min"
    lines = [f"soak from {soak.started}: {soak.scrapes} scrapes over {watched}"]
    lines.append(f"  symbols at the start: {soak.states_at_start or 'none (is the demo running?)'}")
    for topic in sorted(soak.lag_max_s):
        lag, at = soak.lag_max_s[topic], soak.lag_max_at[topic]
        lines.append(f"  lag max {topic}: {lag:.3f}s at {at}")
    lines.append(f"  load average (1 min) max: {soak.load_max:.2f}")
    lines += [f"  EVENT {event}" for event in soak.events] or ["  no kill, restart or state change"]
    lines.append("PASS" if soak.passed() else "FAIL")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument(
        "--run-dir", type=Path, default=Path(os.environ.get("MMSVC_RUN_DIR", ".run"))
    )
    args = parser.parse_args(argv)
    port = stack.read_env(args.run_dir).get("METRICS_PORT", os.environ.get("METRICS_PORT", "9090"))
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        soak = watch(url, args.minutes)
    except OSError as exc:
        why = f"make soak: no metrics at {url} ({exc}): start the demo with `make run`"
        print(why, file=sys.stderr)  # noqa: T201
        return 2
    out = args.run_dir / "soak" / f"{soak.started.replace(':', '')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({**asdict(soak), "passed": soak.passed()}, indent=2))
    print(report(soak))  # noqa: T201
    print(f"written to {out}")  # noqa: T201
    return 0 if soak.passed() else 1


if __name__ == "__main__":
    raise SystemExit(main())
