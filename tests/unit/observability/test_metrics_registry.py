"""The metric helpers write the right series; multiprocess set-up refuses to come too late."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mmsvc.adapters import metrics
from mmsvc.adapters.kafka import topics
from mmsvc.adapters.metrics.definitions import ALL_METRICS, KILL_REASONS, SPEC_METRICS
from mmsvc.adapters.metrics.registry import remove_dead_files


def sample(name: str, **labels: str) -> float | None:
    return metrics.local_registry().get_sample_value(name, labels)


def test_the_catalogue_holds_the_nine_spec_metrics_with_their_labels() -> None:
    assert {(m.name, m.labels) for m in SPEC_METRICS} == {
        ("mm_inventory_usdt", ("symbol",)),
        ("mm_open_orders", ("symbol",)),
        ("mm_spread_bps", ("symbol",)),
        ("mm_pnl_usdt", ("symbol", "type")),
        ("mm_kill_switch_total", ("symbol", "reason")),
        ("mm_quote_compute_latency_seconds", ()),
        ("mm_order_placement_latency_seconds", ()),
        ("mm_kafka_lag_seconds", ("topic",)),
        ("mm_state_gauge", ("symbol", "state")),
    }
    assert len({m.name for m in ALL_METRICS}) == len(ALL_METRICS)


def test_observe_worker_writes_every_gauge_and_a_one_hot_state() -> None:
    metrics.observe_worker(
        "UNIT1",
        state="HALTED",
        inventory_usdt=12.5,
        open_orders=0,
        spread_bps=8,
        realized_pnl_usdt=-3,
        unrealized_pnl_usdt=1,
    )
    metrics.set_state("UNIT1", "ACTIVE")

    assert sample("mm_inventory_usdt", symbol="UNIT1") == 12.5
    assert sample("mm_pnl_usdt", symbol="UNIT1", type="realized") == -3
    assert sample("mm_pnl_usdt", symbol="UNIT1", type="unrealized") == 1
    states = {s: sample("mm_state_gauge", symbol="UNIT1", state=s) for s in ("ACTIVE", "HALTED")}
    assert states == {"ACTIVE": 1.0, "HALTED": 0.0}


def test_a_symbols_counters_exist_at_zero_from_its_first_observation() -> None:
    metrics.observe_worker("UNIT2", open_orders=1)

    for reason in KILL_REASONS:
        assert sample("mm_kill_switch_total", symbol="UNIT2", reason=reason) == 0
    assert sample("mm_order_rejects_total", symbol="UNIT2") == 0
    assert sample("mm_worker_restarts_total", symbol="UNIT2") == 0


def test_counters_alerts_take_the_increase_of_exist_at_zero_before_their_first_event() -> None:
    metrics.observe_worker("UNIT4", open_orders=1)

    for topic in topics.CONSUMED:  # else a first decode error is no increase (MMDecodeErrors)
        assert sample("mm_decode_errors_total", topic=topic) is not None
    assert sample("mm_messages_dropped_total", reason="queue_full") is not None


def test_unknown_states_and_kill_reasons_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown state"):
        metrics.set_state("UNIT3", "RUNNING")
    with pytest.raises(ValueError, match="unknown kill switch reason"):
        metrics.kill_switch_fired("UNIT3", "STALE_DATA")


def test_observe_router_adds_only_the_increase_since_the_last_call() -> None:
    before = sample("mm_messages_routed_total") or 0.0
    metrics.observe_router({"routed": 10, "shed_queue_full": 1, "dropped_no_worker": 2})
    metrics.observe_router({"routed": 15, "shed_queue_full": 1, "dropped_no_worker": 2})

    assert sample("mm_messages_routed_total") == before + 15
    assert sample("mm_messages_dropped_total", reason="queue_full") is not None
    assert sample("mm_messages_dropped_total", reason="no_worker") is not None


def test_multiprocess_setup_after_the_first_metric_is_refused(tmp_path: Path) -> None:
    metrics.set_outbox_backlog(0)

    with pytest.raises(RuntimeError, match="before the first metric"):
        metrics.setup_multiprocess(tmp_path / "prometheus")


def test_setup_switches_to_files_even_when_prometheus_client_was_imported_first(
    tmp_path: Path,
) -> None:
    code = (
        "import prometheus_client, sys; from mmsvc.adapters import metrics;"
        "metrics.setup_multiprocess(sys.argv[1]); metrics.observe_worker('X', open_orders=1)"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path)], check=True)

    assert any(f.name.startswith("gauge_livemostrecent_") for f in tmp_path.glob("*.db"))


def test_cleaning_removes_only_the_files_of_dead_processes(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(dead.stdout)
    for name in (f"gauge_livemostrecent_{dead_pid}.db", f"counter_{dead_pid}.db", "counter_1.db"):
        (tmp_path / name).write_bytes(b"")

    removed = remove_dead_files(tmp_path)

    assert {f.name for f in removed} == {
        f"gauge_livemostrecent_{dead_pid}.db",
        f"counter_{dead_pid}.db",
    }
    assert [f.name for f in tmp_path.iterdir()] == ["counter_1.db"]  # pid 1 is alive


def test_auth_disabled_is_a_zero_or_one_gauge() -> None:
    metrics.set_auth_disabled(True)
    assert sample("mm_auth_disabled") == 1
    metrics.set_auth_disabled(False)
    assert sample("mm_auth_disabled") == 0
