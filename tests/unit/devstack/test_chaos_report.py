"""The chaos checker on a finished run's data directory (issue 15): files in, report out."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from mmsvc.devstack.chaos import check

SYMBOLS = ["SIM1", "SIM2"]


class Rows:
    """The database's answers, by hand."""

    def __init__(self, epochs: dict[str, int], fills: dict[str, tuple[str, int]]) -> None:
        self._epochs, self._fills = epochs, fills  # event_id -> (symbol, ts_ms)

    def epochs(self, client_order_ids: Sequence[str]) -> dict[str, int]:
        return {c: e for c, e in self._epochs.items() if c in client_order_ids}

    def fill_event_ids(self, symbols: Sequence[str], until_ms: int) -> list[str]:
        return [e for e, (s, ts) in self._fills.items() if s in symbols and ts <= until_ms]

    def states(self) -> dict[str, str]:
        return {}


def venue_order(cid: str, symbol: str, created: int, closed: int | None) -> dict[str, object]:
    return {
        "client_order_id": cid,
        "symbol": symbol,
        "created_ts_ms": created,
        "closed_ts_ms": closed,
        "received_ns": created * 1_000_000,
    }


def a_run(data: Path, final: dict[str, str]) -> None:
    """SIM1 moved from epoch 1 (killed host h1 at 1_000) to epoch 2, quoting at 9_000."""
    (data / "meta.json").write_text(json.dumps({"minutes": 1, "symbols": SYMBOLS}))
    log = {
        "now_ms": 20_000,
        "orders": [
            venue_order("a", "SIM1", 0, 1_500),
            venue_order("b", "SIM1", 9_000, None),
            venue_order("c", "SIM2", 0, None),
            venue_order("other", "NOT-OURS", 0, None),
        ],
        "fills": [
            {"event_id": "f1", "symbol": "SIM1", "ts_ms": 100},
            {"event_id": "f2", "symbol": "SIM2", "ts_ms": 19_000},
        ],
    }
    (data / check.VENUE_LOG).write_text(json.dumps(log))
    leases = [
        {"symbol": "SIM1", "epoch": 2, "owner": "h2/7", "taken_at_ms": 7_000},
    ]
    (data / "leases.jsonl").write_text("".join(json.dumps(r) + "\n" for r in leases))
    event = {"kind": "kill9", "host": "h1", "at_ms": 1_000, "owned": {"SIM1": 1}}
    (data / "events.jsonl").write_text(json.dumps(event) + "\n")
    (data / check.FINAL_STATES).write_text(json.dumps(final))


def test_a_clean_run_passes_and_reports_its_takeover(tmp_path: Path) -> None:
    a_run(tmp_path, {"SIM1": "ACTIVE", "SIM2": "ACTIVE"})
    rows = Rows({"a": 1, "b": 2, "c": 5}, {"f1": ("SIM1", 100), "f2": ("SIM2", 19_000)})

    report = check.run_checks(tmp_path, rows)

    assert check.passed(report)
    assert report["c_takeover"]["p50_s"] == 8.0
    assert report["c_takeover"]["lease_taken_p50_s"] == 6.0
    assert report["b_fills"]["venue"] == 2
    text = check.write(tmp_path, report)
    assert "FAIL" not in text
    assert json.loads((tmp_path / "report.json").read_text()) == report


def test_a_missing_fill_a_stuck_symbol_and_an_order_without_a_row_fail(tmp_path: Path) -> None:
    a_run(tmp_path, {"SIM1": "ACTIVE", "SIM2": "PAUSED"})
    rows = Rows({"a": 1, "b": 2}, {"f1": ("SIM1", 100)})  # no row for c; f2 never booked

    report = check.run_checks(tmp_path, rows)

    assert not check.passed(report)
    assert report["a_two_owners_resting"]["orders_without_a_row"] == ["c"]
    assert report["b_fills"]["missing"] == ["f2"]
    assert report["d_left_paused_or_halted"]["symbols"] == {"SIM2": "PAUSED"}
    assert report["c_takeover"]["ok"]
    assert check.render(report).count("FAIL") == 3
