"""Operators' view of a running service: metrics on one endpoint, JSON log lines (issue 7)."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from functools import partial
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from mmsvc.domain.state import Command
from tests.e2e.conftest import Service, ServiceFactory, add_config
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
NINE = {
    "mm_inventory_usdt": {"symbol"},
    "mm_open_orders": {"symbol"},
    "mm_spread_bps": {"symbol"},
    "mm_pnl_usdt": {"symbol", "type"},
    "mm_kill_switch_total": {"symbol", "reason"},
    "mm_quote_compute_latency_seconds": set(),
    "mm_order_placement_latency_seconds": set(),
    "mm_kafka_lag_seconds": {"topic"},
    "mm_state_gauge": {"symbol", "state"},
}


def scrape(service: Service) -> dict[str, list[Any]]:
    text = requests.get(f"http://127.0.0.1:{service.env['METRICS_PORT']}/metrics", timeout=5).text
    samples: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        samples.setdefault(family.name, []).extend(family.samples)
        for sample in family.samples:  # counters: the family drops the _total suffix
            if sample.name != family.name and sample.name.endswith("_total"):
                samples.setdefault(sample.name, []).append(sample)
    return samples


def gauge(samples: dict[str, list[Any]], name: str, **labels: str) -> list[float]:
    return [
        s.value
        for s in samples.get(name, [])
        if all(s.labels.get(k) == v for k, v in labels.items())
    ]


@pytest.fixture
def running(service_factory: ServiceFactory) -> Service:
    service = service_factory()
    for symbol in SYMBOLS:
        add_config(service.sessions, symbol)
    service.start("metrics")
    service.start("supervisor")
    service.start("outbox")
    service.wait_ready(SYMBOLS)
    for symbol in SYMBOLS:
        assert service.command(Command.ENABLE, symbol)[0] == 200
    for symbol in SYMBOLS:
        wait_for(partial(service.quotes, symbol), 30, f"{symbol} quotes")
    return service


def test_every_spec_metric_is_served_with_its_labels_for_every_symbol(running: Service) -> None:
    service = running
    service.command(Command.KILL, "ETHUSDT")  # so mm_kill_switch_total has a sample
    samples = wait_for(
        lambda: (
            (s := scrape(service))
            and gauge(s, "mm_state_gauge", symbol="ETHUSDT", state="HALTED") == [1.0]
            and s
        ),
        30,
        "ETHUSDT HALTED in mm_state_gauge",
    )
    for name, labels in NINE.items():
        family = [s for s in samples.get(name, []) if not s.name.endswith(("_created", "_bucket"))]
        assert family, f"{name} missing from the exposition"
        assert all(set(s.labels) - {"le"} == labels for s in family), (name, family[:2])
    for symbol in SYMBOLS:
        assert gauge(samples, "mm_inventory_usdt", symbol=symbol)
        assert sorted(
            s.labels["type"] for s in samples["mm_pnl_usdt"] if s.labels["symbol"] == symbol
        ) == ["realized", "unrealized"]
        states = {
            s.labels["state"]: s.value
            for s in samples["mm_state_gauge"]
            if s.labels["symbol"] == symbol
        }
        assert sorted(states) == ["ACTIVE", "HALTED", "PAUSED"]
        assert sum(states.values()) == 1
    assert gauge(samples, "mm_kill_switch_total", symbol="ETHUSDT", reason="MANUAL") == [1.0]


def test_open_orders_gauge_agrees_with_the_exchange(running: Service) -> None:
    service = running

    def agree() -> bool:
        samples = scrape(service)
        return all(
            gauge(samples, "mm_open_orders", symbol=s) == [float(len(service.open_orders(s)))]
            for s in SYMBOLS
        )

    wait_for(agree, 30, "mm_open_orders == the simulator's open orders")


@pytest.mark.long  # make test-long: a service of its own for one hygiene check
def test_a_killed_and_restarted_worker_leaves_one_series_per_symbol(running: Service) -> None:
    service = running
    pid = int(service.command(Command.STATUS, "BTCUSDT")[1]["pid"])
    os.kill(pid, signal.SIGKILL)
    wait_for(
        lambda: (r := service.command(Command.STATUS, "BTCUSDT"))[0] == 200 and r[1]["pid"] != pid,
        60,
        "restart",
    )
    samples = wait_for(
        lambda: (
            (s := scrape(service))
            and gauge(s, "mm_state_gauge", symbol="BTCUSDT", state="PAUSED") == [1.0]
            and s
        ),
        30,
        "the restarted worker's gauges",
    )
    for name in ("mm_inventory_usdt", "mm_open_orders", "mm_spread_bps"):
        per_symbol = Counter(s.labels["symbol"] for s in samples[name])
        assert per_symbol == Counter(SYMBOLS), (name, per_symbol)
    assert len(gauge(samples, "mm_state_gauge", symbol="BTCUSDT")) == 3


@pytest.mark.long  # make test-long: the JSON log format is unit-tested too
def test_log_lines_are_json_with_the_required_fields(running: Service) -> None:
    service = running
    service.command(Command.KILL, "BTCUSDT")
    wait_for(
        lambda: "kill switch fired" in (service.run_dir / "supervisor.log").read_text(),
        30,
        "the kill logged",
    )
    lines = [
        json.loads(line)
        for line in (service.run_dir / "supervisor.log").read_text().splitlines()
        if line.startswith("{")
    ]
    assert lines
    for line in lines:
        assert {"timestamp", "level", "service", "message"} <= set(line), line
        assert line["timestamp"].endswith("Z")
        assert "T" in line["timestamp"]
    kill = next(line for line in lines if line["message"] == "kill switch fired")
    assert kill["symbol"] == "BTCUSDT"
    assert kill["level"] == "CRITICAL"
    assert kill["trigger"] == "MANUAL"
    assert {line["process"] for line in lines} >= {"supervisor", "worker"}
