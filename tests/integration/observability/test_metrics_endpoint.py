"""Several real processes write metrics; the metrics process serves them as one exposition."""

from __future__ import annotations

import signal
from collections import Counter

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from mmsvc.adapters import metrics
from mmsvc.adapters.metrics.definitions import (
    ALL_METRICS,
    KILL_REASONS,
    PNL_TYPES,
    SPEC_METRICS,
    STATES,
)
from tests.integration.observability.conftest import Processes

pytestmark = pytest.mark.integration

SYMBOLS = ("BTCUSDT", "ETHUSDT")
PER_SYMBOL_GAUGES = ("mm_inventory_usdt", "mm_open_orders", "mm_spread_bps", "mm_pnl_usdt")


def scrape(url: str) -> list[Sample]:
    response = requests.get(url, timeout=5)
    response.raise_for_status()
    return [s for f in text_string_to_metric_families(response.text) for s in f.samples]


def named(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    return [
        s
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    ]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    (sample,) = named(samples, name, **labels)
    return sample.value


def test_every_spec_metric_is_served_with_its_labels_for_every_symbol(
    procs: Processes, metrics_url: str
) -> None:
    procs.role("supervisor")
    for symbol in SYMBOLS:
        procs.role("worker", symbol, "ACTIVE", "1000")

    samples = scrape(metrics_url)

    for d in SPEC_METRICS:
        for name in d.sample_names:
            found = named(samples, name)
            assert found, f"{name} is missing"
            expected = set(d.labels) | ({"le"} if name.endswith("_bucket") else set())
            assert {frozenset(s.labels) for s in found} == {frozenset(expected)}, name
    for symbol in SYMBOLS:
        assert value(samples, "mm_inventory_usdt", symbol=symbol) == 1000
        assert value(samples, "mm_open_orders", symbol=symbol) == 2
        assert value(samples, "mm_spread_bps", symbol=symbol) == 10
        assert {s.labels["type"] for s in named(samples, "mm_pnl_usdt", symbol=symbol)} == set(
            PNL_TYPES
        )
        states = {
            s.labels["state"]: s.value for s in named(samples, "mm_state_gauge", symbol=symbol)
        }
        assert states == {s: float(s == "ACTIVE") for s in STATES}
        kills = {
            s.labels["reason"]: s.value
            for s in named(samples, "mm_kill_switch_total", symbol=symbol)
        }
        assert kills == {r: float(r == "REJECT_STORM") for r in KILL_REASONS}
    assert value(samples, "mm_kafka_lag_seconds", topic="md.orderbook.delta.v1") == 0.25
    assert value(samples, "mm_quote_compute_latency_seconds_count") == len(SYMBOLS)
    assert value(samples, "mm_order_placement_latency_seconds_bucket", le="0.02") == len(SYMBOLS)


def test_operator_metrics_are_served(procs: Processes, metrics_url: str) -> None:
    procs.role("supervisor")
    procs.role("worker", "BTCUSDT", "PAUSED", "0")

    samples = scrape(metrics_url)

    for d in ALL_METRICS:
        assert any(named(samples, n) for n in d.sample_names), f"{d.name} is missing"
    assert value(samples, "mm_messages_routed_total") == 100
    assert value(samples, "mm_messages_dropped_total", reason="queue_full") == 2
    assert value(samples, "mm_messages_dropped_total", reason="other_account") == 3
    assert value(samples, "mm_decode_errors_total", topic="md.trades.v1") == 1
    refused = {"topic": "md.orderbook.snap.v1", "reason": "non_finite_price"}
    assert value(samples, "mm_messages_rejected_total", **refused) == 1
    assert value(samples, "mm_dead_letters", symbol="BTCUSDT") == 0
    assert value(samples, "mm_order_rejects_total", symbol="BTCUSDT") == 1
    assert value(samples, "mm_worker_restarts_total", symbol="BTCUSDT") == 1
    assert value(samples, "mm_outbox_backlog") == 4


@pytest.mark.parametrize("supervisor_marks_dead", [True, False])
def test_a_killed_and_restarted_worker_leaves_one_series_per_symbol(
    procs: Processes,
    metrics_url: str,
    monkeypatch: pytest.MonkeyPatch,
    supervisor_marks_dead: bool,
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", procs.env["PROMETHEUS_MULTIPROC_DIR"])
    procs.role("worker", "ETHUSDT", "PAUSED", "50")
    first = procs.role("worker", "BTCUSDT", "ACTIVE", "1000")
    assert value(scrape(metrics_url), "mm_inventory_usdt", symbol="BTCUSDT") == 1000

    first.send_signal(signal.SIGKILL)
    first.wait(timeout=5)
    if supervisor_marks_dead:
        metrics.mark_dead(first.pid)
    procs.role("worker", "BTCUSDT", "PAUSED", "2000")  # D3: a restarted worker comes back PAUSED
    samples = scrape(metrics_url)

    for name in (*PER_SYMBOL_GAUGES, "mm_state_gauge"):
        series = Counter(tuple(sorted(s.labels.items())) for s in named(samples, name))
        assert series, name
        assert set(series.values()) == {1}, f"{name} has duplicate series: {series}"
        assert all("pid" not in dict(labels) for labels in series), name
    assert value(samples, "mm_inventory_usdt", symbol="BTCUSDT") == 2000
    assert value(samples, "mm_inventory_usdt", symbol="ETHUSDT") == 50
    states = {
        s.labels["state"]: s.value for s in named(samples, "mm_state_gauge", symbol="BTCUSDT")
    }
    assert states == {"ACTIVE": 0.0, "PAUSED": 1.0, "HALTED": 0.0}
    # Counters keep the dead worker's counts: totals survive a restart.
    assert value(samples, "mm_kill_switch_total", symbol="BTCUSDT", reason="REJECT_STORM") == 2


def test_the_endpoint_answers_only_metrics_and_health(metrics_url: str) -> None:
    base = metrics_url.removesuffix("/metrics")
    assert requests.get(f"{base}/healthz", timeout=5).text == "ok\n"
    assert requests.get(f"{base}/other", timeout=5).status_code == 404


def test_a_deleted_symbols_gauges_disappear_once_its_worker_is_marked_dead(
    procs: Processes, metrics_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", procs.env["PROMETHEUS_MULTIPROC_DIR"])
    procs.role("worker", "ETHUSDT", "PAUSED", "50")
    gone = procs.role("worker", "SOLUSDT", "PAUSED", "10")

    gone.terminate()
    gone.wait(timeout=5)
    metrics.mark_dead(gone.pid)
    samples = scrape(metrics_url)

    assert {s.labels["symbol"] for s in named(samples, "mm_state_gauge")} == {"ETHUSDT"}
    assert not named(samples, "mm_inventory_usdt", symbol="SOLUSDT")
