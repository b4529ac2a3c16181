"""The Grafana dashboard and the alert rules parse, and use only metrics and labels that exist."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml  # PyYAML: installed with the dev extras (through schemathesis)

from mmsvc.adapters.metrics.definitions import ALL_METRICS, BY_NAME, MetricDef

ROOT = Path(__file__).resolve().parents[3] / "mmsvc" / "observability"
DASHBOARD = ROOT / "grafana" / "mmsvc-dashboard.json"
ALERTS = ROOT / "prometheus" / "alerts.yml"
_METRIC = re.compile(r"\b(mm_[a-z0-9_]+)(\{[^}]*\})?")
_MATCHER = re.compile(r"(\w+)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|on|without|ignoring)\s*\(([^)]*)\)")
_DURATION = re.compile(r"^\d+[smhd]$")


def metric_of(series: str) -> MetricDef:
    for name, definition in BY_NAME.items():
        if series == name or series in definition.sample_names:
            return definition
    raise AssertionError(f"{series} is not a metric of mmsvc.adapters.metrics")


def check_expr(expr: str) -> set[str]:
    """Assert every metric and label the expression names exists; return the metrics."""
    used: set[str] = set()
    labels_in_scope = {"le", "job", "instance"}
    for match in _METRIC.finditer(expr):
        definition = metric_of(match.group(1))
        used.add(definition.name)
        labels_in_scope |= set(definition.labels)
        for label in _MATCHER.findall(match.group(2) or ""):
            assert label in (*definition.labels, "le", "job", "instance"), (expr, label)
    for grouping in _GROUPING.findall(expr):
        for label in filter(None, (x.strip() for x in grouping.split(","))):
            assert label in labels_in_scope, (expr, label)
    return used


def dashboard_exprs(dashboard: dict[str, Any]) -> Iterator[str]:
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            yield target["expr"]
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            yield variable["definition"]
    for annotation in dashboard["annotations"]["list"]:
        yield annotation["expr"]


@pytest.fixture(scope="module")
def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text())
    return loaded


@pytest.fixture(scope="module")
def rules() -> dict[str, dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    return {rule["alert"]: rule for group in document["groups"] for rule in group["rules"]}


def test_the_dashboard_has_a_panel_for_every_metric(dashboard: dict[str, Any]) -> None:
    used = set().union(*(check_expr(e) for e in dashboard_exprs(dashboard)))

    assert used == {m.name for m in ALL_METRICS}


def test_dashboard_panels_have_unique_ids_and_a_datasource(dashboard: dict[str, Any]) -> None:
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]


def test_every_alert_is_well_formed_and_uses_existing_metrics(
    rules: dict[str, dict[str, Any]],
) -> None:
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert rule["annotations"]["summary"], name
        assert _DURATION.match(rule.get("for", "0s")), name
        if name != "MMMetricsDown":
            assert check_expr(rule["expr"]), name


def test_the_alerts_operators_asked_for_exist(rules: dict[str, dict[str, Any]]) -> None:
    assert "mm_kill_switch_total" in rules["MMKillSwitchFired"]["expr"]
    assert "mm_kafka_lag_seconds" in rules["MMKafkaLagHigh"]["expr"]
    assert "mm_order_rejects_total" in rules["MMOrderRejectRate"]["expr"]
    assert "mm_outbox_backlog" in rules["MMOutboxBacklogGrowing"]["expr"]
    assert "mm_worker_restarts_total" in rules["MMWorkerRestarting"]["expr"]
    not_quoting = rules["MMSymbolNotQuotingWhileActive"]
    assert 'mm_state_gauge{state="ACTIVE"}' in not_quoting["expr"]
    assert "mm_open_orders) == 0" in not_quoting["expr"]
    assert not_quoting["for"] == "1m"
