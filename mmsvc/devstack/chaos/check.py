"""Check a chaos run: ``python -m mmsvc.devstack.chaos.check DATA_DIR``.

Runs at the end of ``make chaos`` and alone on a finished run's data: the
directory the driver wrote (meta.json, events.jsonl, leases.jsonl,
states.jsonl, venue-log.json, final-states.json) and the run's database
(``mm_orders`` with their epochs, ``mm_fills``, ``mm_states``), which stays
until the next chaos run recreates it. A missing venue log is fetched from the
simulator named in meta.json while it still runs. Prints the four checks,
writes report.json and report.txt beside the data, and exits 1 when a check
fails (checker.py says what each check means).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import requests
from sqlalchemy import create_engine, text

from mmsvc.devstack.chaos import checker
from mmsvc.devstack.chaos.checker import Disruption, VenueOrder

VENUE_LOG = "venue-log.json"
FINAL_STATES = "final-states.json"
# A fill the venue made just before the log was taken may still be on its way
# to a worker: the live check asks the database again for this long.
FILLS_GRACE_S = 30.0


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The records of a JSON-lines file (none when it is missing)."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def fetch_venue_log(exchange_admin_url: str, account_id: str) -> dict[str, Any]:
    """The simulator's order and fill log of our account."""
    answer = requests.get(
        f"{exchange_admin_url}/v1/log", params={"account_id": account_id}, timeout=60
    )
    answer.raise_for_status()
    log: dict[str, Any] = answer.json()
    return log


def venue_log(data: Path, meta: Mapping[str, Any]) -> dict[str, Any]:
    """The saved venue log, or the simulator's (then saved) while the run's stack is up."""
    path = data / VENUE_LOG
    if path.exists():
        saved: dict[str, Any] = json.loads(path.read_text())
        return saved
    log = fetch_venue_log(meta["exchange_admin_url"], meta["account_id"])
    path.write_text(json.dumps(log))
    return log


def taken_at(samples: Sequence[Mapping[str, Any]]) -> dict[tuple[str, int], int]:
    """(symbol, epoch) -> when its lease was taken (ms), from the driver's lease samples."""
    return {(s["symbol"], int(s["epoch"])): int(s["taken_at_ms"]) for s in samples}


def owner_of(samples: Sequence[Mapping[str, Any]]) -> dict[tuple[str, int], str]:
    """(symbol, epoch) -> the host that held it."""
    return {(s["symbol"], int(s["epoch"])): str(s["owner"]).rpartition("/")[0] for s in samples}


class Rows(Protocol):
    """What the checks read from the run's database (a stub in the unit tests)."""

    def epochs(self, client_order_ids: Sequence[str]) -> dict[str, int]: ...
    def fill_event_ids(self, symbols: Sequence[str], until_ms: int) -> list[str]: ...
    def states(self) -> dict[str, str]: ...


class Database:
    """The run's rows: order epochs, fill event ids and states."""

    def __init__(self, url: str) -> None:
        self.engine = create_engine(url, pool_pre_ping=True)

    def epochs(self, client_order_ids: Sequence[str]) -> dict[str, int]:
        """client_order_id -> the epoch on its row (rows without one are left out)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT client_order_id::text AS id, epoch FROM mm_orders"
                    " WHERE client_order_id::text = ANY(:ids) AND epoch IS NOT NULL"
                ),
                {"ids": list(client_order_ids)},
            ).all()
        return {str(r.id): int(r.epoch) for r in rows}

    def fill_event_ids(self, symbols: Sequence[str], until_ms: int) -> list[str]:
        """Each booked fill's event_id of the run's symbols up to ``until_ms`` (with repeats)."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT event_id FROM mm_fills WHERE symbol = ANY(:s) AND ts_ms <= :until"),
                {"s": list(symbols), "until": until_ms},
            ).all()
        return [str(r.event_id) for r in rows]

    def states(self) -> dict[str, str]:
        """symbol -> its state now."""
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT symbol, state FROM mm_states")).all()
        return {str(r.symbol): str(r.state) for r in rows}

    def close(self) -> None:
        """Let go of the pool."""
        self.engine.dispose()


def booked_fills(
    db: Rows, symbols: Sequence[str], until_ms: int, venue_ids: Sequence[str], grace_s: float
) -> checker.FillMatch:
    """The fill comparison, asking again for ``grace_s`` while fills are still missing."""
    deadline = time.monotonic() + grace_s
    while True:
        match = checker.match_fills(venue_ids, db.fill_event_ids(symbols, until_ms))
        if match.ok or time.monotonic() > deadline:
            return match
        time.sleep(1.0)


def run_checks(data: Path, db: Rows, *, fills_grace_s: float = 0.0) -> dict[str, Any]:
    """Compute the four checks of the run in ``data``; the report as one JSON-able record."""
    meta = json.loads((data / "meta.json").read_text())
    symbols: list[str] = list(meta["symbols"])
    log = venue_log(data, meta)
    end_ms = int(log["now_ms"])
    orders = [VenueOrder.from_log(o) for o in log["orders"] if o["symbol"] in symbols]
    epoch_of = db.epochs([o.client_order_id for o in orders])
    orphans = sorted(o.client_order_id for o in orders if o.client_order_id not in epoch_of)
    samples = read_jsonl(data / "leases.jsonl")
    found = checker.overlaps(orders, epoch_of, taken_at(samples), end_ms)
    fills = [f for f in log["fills"] if f["symbol"] in symbols and int(f["ts_ms"]) <= end_ms]
    match = booked_fills(db, symbols, end_ms, [f["event_id"] for f in fills], fills_grace_s)
    events = [
        Disruption(e["kind"], e["host"], int(e["at_ms"]), e.get("active", e.get("owned", {})))
        for e in read_jsonl(data / "events.jsonl")
    ]
    taken = checker.takeovers(events, orders, epoch_of, taken_at_ms=taken_at(samples))
    final_path = data / FINAL_STATES
    final = json.loads(final_path.read_text()) if final_path.exists() else db.states()
    left = checker.stuck(final, symbols, meta.get("halted_on_purpose", []))
    return _report(meta, orders, orphans, found, match, taken, left, events, samples)


def _report(
    meta: Mapping[str, Any],
    orders: Sequence[VenueOrder],
    orphans: Sequence[str],
    found: Sequence[checker.Overlap],
    match: checker.FillMatch,
    taken: Sequence[checker.Takeover],
    left: Mapping[str, str],
    events: Sequence[Disruption],
    samples: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    violations = [o for o in found if not o.late_alive]
    seconds = [t.seconds for t in taken if t.seconds is not None]
    leases = [t.lease_seconds for t in taken if t.lease_seconds is not None]
    never = [t for t in taken if t.seconds is None]
    takeover: dict[str, Any] = {
        "count": len(taken),
        "never": [f"{t.symbol} after {t.kind} of {t.host} at {t.at_ms}" for t in never],
    }
    if seconds:
        takeover |= {
            "p50_s": round(checker.percentile(seconds, 50), 2),
            "p99_s": round(checker.percentile(seconds, 99), 2),
            "max_s": round(max(seconds), 2),
        }
    if leases:  # the share before the new owner's worker began: group and lease, not start-up
        takeover |= {
            "lease_taken_p50_s": round(checker.percentile(leases, 50), 2),
            "lease_taken_max_s": round(max(leases), 2),
        }
    takeover["by_symbol"] = [
        {"kind": t.kind, "host": t.host, "symbol": t.symbol, "at_ms": t.at_ms, "s": t.seconds}
        | {"lease_s": t.lease_seconds}
        for t in taken
    ]
    p99_ok = not seconds or takeover["p99_s"] <= checker.TAKEOVER_P99_MAX_S
    return {
        "run": {
            "minutes": meta.get("minutes"),
            "symbols": len(meta["symbols"]),
            "disruptions": dict(sorted(_count(e.kind for e in events).items())),
            "venue_orders": len(orders),
            "epochs_seen": len(samples),
        },
        "a_two_owners_resting": {
            "ok": not violations and not orphans,
            "violations": [_overlap(o) for o in violations],
            "late_alive_canceled_in_time": [_overlap(o) for o in found if o.late_alive],
            "orders_without_a_row": list(orphans),
        },
        "b_fills": {
            "ok": match.ok,
            "venue": match.venue,
            "booked": match.booked,
            "missing": list(match.missing),
            "unknown": list(match.unknown),
            "duplicated": list(match.duplicated),
        },
        "c_takeover": {"ok": not never and p99_ok, **takeover},
        "d_left_paused_or_halted": {"ok": not left, "symbols": dict(left)},
    }


def _count(kinds: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for kind in kinds:
        counts[kind] = counts.get(kind, 0) + 1
    return counts


def _overlap(o: checker.Overlap) -> dict[str, Any]:
    return {
        "symbol": o.symbol,
        "start_ms": o.start_ms,
        "duration_ms": o.duration_ms,
        "epochs": list(o.epochs),
        "orders": list(o.client_order_ids),
    }


def passed(report: Mapping[str, Any]) -> bool:
    """True when all four checks passed."""
    return all(v["ok"] for k, v in report.items() if k != "run")


def render(report: Mapping[str, Any]) -> str:
    """The report as a person reads it."""
    a, b = report["a_two_owners_resting"], report["b_fills"]
    c, d = report["c_takeover"], report["d_left_paused_or_halted"]
    run = report["run"]

    def mark(ok: bool) -> str:
        return "PASS" if ok else "FAIL"

    lines = [
        f"chaos run: {run['minutes']} min, {run['symbols']} symbols, disruptions "
        f"{run['disruptions']}, {run['venue_orders']} venue orders, {run['epochs_seen']} epochs",
        f"(a) {mark(a['ok'])} two owners resting at once: {len(a['violations'])} violations, "
        f"{len(a['late_alive_canceled_in_time'])} late-alive old orders canceled within "
        f"{checker.LATE_ALIVE_MAX_MS} ms, {len(a['orders_without_a_row'])} orders without a row",
    ]
    lines += [f"      {o}" for o in a["violations"] + a["late_alive_canceled_in_time"]][:20]
    lines.append(
        f"(b) {mark(b['ok'])} fills: venue {b['venue']}, booked {b['booked']}, missing "
        f"{len(b['missing'])}, unknown {len(b['unknown'])}, duplicated {len(b['duplicated'])}"
    )
    figures = (
        f"p50 {c['p50_s']} s, p99 {c['p99_s']} s, max {c['max_s']} s"
        if "p50_s" in c
        else "no takeover measured"
    )
    if "lease_taken_p50_s" in c:
        figures += (
            f" (new lease taken: p50 {c['lease_taken_p50_s']} s, max {c['lease_taken_max_s']} s)"
        )
    lines.append(
        f"(c) {mark(c['ok'])} death or stop to quoting again under a new owner "
        f"({c['count']} symbol moves): {figures} (p99 bound {checker.TAKEOVER_P99_MAX_S} s); "
        f"never: {c['never'] or 'none'}"
    )
    lines.append(
        f"(d) {mark(d['ok'])} symbols left PAUSED or HALTED not on purpose: "
        f"{d['symbols'] or 'none'}"
    )
    return "\n".join(lines)


def write(data: Path, report: Mapping[str, Any]) -> str:
    """report.json and report.txt in ``data``; the text."""
    rendered = render(report)
    (data / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True))
    (data / "report.txt").write_text(rendered + "\n")
    return rendered


def check(
    data: Path,
    database_url: str | None = None,
    *,
    fills_grace_s: float = 0.0,
    out: Callable[[str], None] = print,
) -> bool:
    """Check the run in ``data``, print and write the report; True when every check passed."""
    meta = json.loads((data / "meta.json").read_text())
    db = Database(database_url or meta["database_url"])
    try:
        report = run_checks(data, db, fills_grace_s=fills_grace_s)
    finally:
        db.close()
    out(write(data, report))
    return passed(report)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m mmsvc.devstack.chaos.check DATA_DIR [--database-url URL]``."""
    parser = argparse.ArgumentParser(prog="mmsvc.devstack.chaos.check", description=__doc__)
    parser.add_argument("data", type=Path, help="a chaos run's data directory")
    parser.add_argument("--database-url", help="the run's database (default: meta.json's)")
    args = parser.parse_args(argv)
    try:
        ok = check(args.data, args.database_url, fills_grace_s=0.0)
    except (OSError, KeyError, requests.RequestException) as exc:
        print(f"chaos check: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
