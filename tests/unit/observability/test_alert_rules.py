"""The alert rules pass promtool's checks and unit tests, every rule shown firing and quiet."""

from __future__ import annotations

import shutil
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import yaml

from mmsvc.devstack import prometheus

RULES_DIR = Path(__file__).resolve().parents[3] / "mmsvc" / "observability" / "prometheus"
ALERTS = RULES_DIR / "alerts.yml"
ALERTS_TEST = RULES_DIR / "alerts_test.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool from the rules' directory (the test file names alerts.yml relatively)."""
    binary = shutil.which("promtool")
    if binary is None:
        pytest.fail("promtool is not installed: `make prometheus` installs Debian's prometheus")
    return subprocess.run(
        [binary, *args], cwd=RULES_DIR, capture_output=True, text=True, timeout=120, check=False
    )


def test_promtool_check_rules_accepts_the_shipped_rules() -> None:
    result = promtool("check", "rules", ALERTS.name)

    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_of_the_rules_pass() -> None:
    result = promtool("test", "rules", ALERTS_TEST.name)

    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_rule_has_a_unit_test_that_makes_it_fire() -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    names = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    tests: list[dict[str, Any]] = yaml.safe_load(ALERTS_TEST.read_text())["tests"]
    fired = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    silent = {
        case["alertname"]
        for test in tests
        for case in test.get("alert_rule_test", [])
        if not case.get("exp_alerts")
    }

    assert names - fired == set(), "rules never shown firing"
    assert names - silent == set(), "rules never shown quiet (a boundary or a pending phase)"


def test_the_dev_stack_prometheus_config_passes_promtool_with_the_shipped_rules(
    tmp_path: Path,
) -> None:
    prometheus.scrape(tmp_path, "127.0.0.1:9090")
    config = tmp_path / "prometheus.yml"
    config.write_text(prometheus.config(prometheus.targets_file(tmp_path)))

    result = promtool("check", "config", str(config))

    assert result.returncode == 0, result.stdout + result.stderr
    rules = yaml.safe_load(ALERTS.read_text())
    count = sum(len(group["rules"]) for group in rules["groups"])
    assert f"SUCCESS: {count} rules found" in result.stdout  # the shipped file, loaded


def test_the_graph_link_shows_spread_inventory_pnl_open_orders_and_lag() -> None:
    link = urllib.parse.urlsplit(
        prometheus.graph_url("http://127.0.0.1:1", ["BTCUSDT", "SOL-PERP"])
    )
    exprs = [v for k, v in urllib.parse.parse_qsl(link.query) if k.endswith(".expr")]

    assert link.path == "/graph"
    for metric in ("mm_spread_bps", "mm_inventory_usdt", "mm_pnl_usdt", "mm_open_orders"):
        assert f'{metric}{{symbol=~"BTCUSDT|SOL-PERP"}}' in exprs
    assert "max by (topic) (mm_kafka_lag_seconds)" in exprs
