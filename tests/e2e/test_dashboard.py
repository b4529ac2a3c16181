"""Every query of the Grafana dashboard, run against a real Prometheus, shows the demo symbols.

A panel whose query returns nothing is a broken panel: a wrong name, a label
that does not exist, or a series that only appears after its first event.
Grafana's variables are replaced as Grafana would for the demo symbols.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from mmsvc.devstack.run import DEMO
from mmsvc.domain.state import Command
from tests.e2e.conftest import Service, ServiceFactory, add_config
from tests.fixtures.prometheus import Prometheus
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

DASHBOARD = Path(__file__).resolve().parents[2] / "mmsvc/observability/grafana/mmsvc-dashboard.json"
SYMBOLS = sorted(DEMO)
VARIABLES = {
    "$symbol": "|".join(SYMBOLS),  # a multi-value selection of the demo symbols
    "$__rate_interval": "10s",  # Grafana: at least 4 scrape intervals (1 s here)
    "$__range": "5m",
}


def panel_queries() -> Iterator[tuple[str, str]]:
    """(panel title and refId, PromQL with Grafana's variables replaced) for every target."""
    dashboard = json.loads(DASHBOARD.read_text())
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            expr = target["expr"]
            for variable, value in VARIABLES.items():
                expr = expr.replace(variable, value)
            assert "$" not in expr, f"{panel['title']}: a variable this test does not know"
            yield f"{panel['title']} {target['refId']}", expr


def symbols_in(result: list[dict[str, Any]]) -> set[str]:
    return {series["metric"].get("symbol", "") for series in result}


def answers_status(service: Service, symbol: str) -> bool:
    """The symbol's worker answers STATUS over the control channel."""
    return service.command(Command.STATUS, symbol)[0] == 200


@pytest.fixture
def demo(
    service_factory: ServiceFactory, prometheus_factory: Callable[[str], Prometheus]
) -> tuple[Service, Prometheus]:
    """The demo symbols quoting, as `make run` sets them up, and a Prometheus scraping them."""
    service = service_factory()
    first, *others = SYMBOLS
    add_config(service.sessions, first, **DEMO[first])
    for name in ("metrics", "supervisor", "outbox"):
        service.start(name)
    service.wait_ready([first])
    # The others one at a time, as an operator creates configs over the API: three
    # workers starting at once on a loaded 2-core box miss the supervisor's 10 s hello.
    for symbol in others:
        add_config(service.sessions, symbol, **DEMO[symbol])
        # A 503 says the worker was not up in time; the supervisor keeps starting it.
        assert service.command(Command.CONFIG_CREATED, symbol, timeout_s=30)[0] in (
            200,
            201,
            503,
        )
        wait_for(partial(answers_status, service, symbol), 120, f"{symbol} up")
    prom = prometheus_factory(f"127.0.0.1:{service.env['METRICS_PORT']}")
    for symbol in SYMBOLS:
        assert service.command(Command.ENABLE, symbol)[0] == 200
    for symbol in SYMBOLS:
        wait_for(partial(service.open_orders, symbol), 30, f"{symbol} quoting")
    prom.wait_scraped('mm_open_orders{symbol="BTCUSDT"} > 0')
    return service, prom


@pytest.mark.long  # make test-long (14 s): the panels' metrics are checked in make test
def test_every_query_of_the_dashboard_shows_the_demo_symbols(
    demo: tuple[Service, Prometheus],
) -> None:
    service, prom = demo
    empty: dict[str, str] = {}
    for title, expr in panel_queries():
        per_symbol = "symbol" in expr

        def shown(expr: str = expr, per_symbol: bool = per_symbol) -> bool:
            result = prom.query(expr)
            return set(SYMBOLS) <= symbols_in(result) if per_symbol else bool(result)

        try:
            wait_for(shown, 20, title)
        except AssertionError:
            empty[title] = expr
    assert empty == {}, "panels showing nothing (or missing a demo symbol)"

    dashboard = json.loads(DASHBOARD.read_text())
    (variable,) = [v for v in dashboard["templating"]["list"] if v["name"] == "symbol"]
    assert re.fullmatch(r"label_values\(mm_state_gauge, symbol\)", variable["definition"])
    wait_for(
        lambda: set(SYMBOLS) <= set(prom.label_values("symbol", "mm_state_gauge")),
        30,
        "label_values(mm_state_gauge, symbol) to list the demo symbols",
    )

    (annotation,) = dashboard["annotations"]["list"]  # marks kills: make one
    assert service.command(Command.KILL, "SOL-PERP")[0] == 200
    wait_for(
        lambda: "SOL-PERP" in symbols_in(prom.query(annotation["expr"])),
        30,
        f"the kill annotation ({annotation['expr']}) to mark SOL-PERP",
    )
