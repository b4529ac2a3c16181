"""The shipped alert rules, evaluated by a real Prometheus scraping the running service (issue 16).

Each test provokes a rule's cause from outside (the control channel the admin
API uses, the simulator's fault knobs, a bad producer, a signal), then reads
Prometheus's ``/api/v1/alerts`` until the alert is pending and firing, and
until the cure clears it. The rules are loaded exactly as shipped (their
``for:`` included); only scrape and evaluation run every second. Rules whose
``for:`` is minutes long (MMSymbolHalted, MMOrderPlacementSlow,
MMMarketDataShed, MMOutboxBacklogGrowing) and MMKafkaLagHigh are proven by
promtool in mmsvc/observability/prometheus/alerts_test.yml; here
MMSymbolHalted is at least seen pending on the real series.
The measured times are printed (``pytest -s``) as ``ALERT-TIMING`` lines.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest
from confluent_kafka import Producer

from mmsvc.adapters.kafka import topics
from mmsvc.domain.state import Command
from tests.e2e.conftest import Service, ServiceFactory, add_config
from tests.fixtures.prometheus import Prometheus
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SYMBOL = "ETHUSDT"
KILL = "MMKillSwitchFired"
NOT_QUOTING = "MMSymbolNotQuotingWhileActive"


def timing(alert: str, what: str, seconds: float) -> None:
    """One line of the report: how long from the cause to what was seen."""
    print(f"ALERT-TIMING {alert}: {what} {seconds:.1f} s")


def wait_state(
    prom: Prometheus, since: float, state: str | None, timeout: float, name: str, **labels: str
) -> float:
    """Wait until alert ``name`` is in ``state`` (None: gone); the seconds since ``since``."""
    wait_for(
        lambda: prom.alert_state(name, **labels) == state,
        timeout,
        f"{name}{labels} {state or 'cleared'} in Prometheus",
        poll_s=0.2,
    )
    return time.monotonic() - since


def watched(
    service_factory: Callable[..., Service],
    prometheus_factory: Callable[[str], Prometheus],
    *,
    enable: bool = True,
    **config: object,
) -> tuple[Service, Prometheus]:
    """The service quoting SYMBOL (or ready, PAUSED) and a Prometheus that has scraped it."""
    service = service_factory()
    add_config(service.sessions, SYMBOL, **config)
    for name in ("metrics", "supervisor", "outbox"):
        service.start(name)
    service.wait_ready([SYMBOL])
    prom = prometheus_factory(f"127.0.0.1:{service.env['METRICS_PORT']}")
    if enable:
        assert service.command(Command.ENABLE, SYMBOL)[0] == 200
        wait_for(lambda: len(service.open_orders(SYMBOL)) == 2, 30, "quotes")
        prom.wait_scraped(f'mm_state_gauge{{symbol="{SYMBOL}",state="ACTIVE"}} == 1')
    else:
        prom.wait_scraped(f'mm_state_gauge{{symbol="{SYMBOL}",state="PAUSED"}} == 1')
    return service, prom


@pytest.mark.long  # make test-long (25 s): promtool unit-tests every rule in make test
def test_a_manual_kill_pends_then_fires_the_kill_alert_and_a_reset_clears_it(
    service_factory: ServiceFactory, prometheus_factory: Callable[[str], Prometheus]
) -> None:
    service, prom = watched(service_factory, prometheus_factory)
    # The counter's 0 must be in Prometheus before the kill: increase() needs both ends.
    prom.wait_scraped(f'mm_kill_switch_total{{symbol="{SYMBOL}",reason="MANUAL"}} == 0')
    assert prom.alerts(KILL, symbol=SYMBOL) == []

    cause = time.monotonic()
    assert service.command(Command.KILL, SYMBOL)[0] == 200
    labels = {"symbol": SYMBOL, "reason": "MANUAL"}
    pending = wait_state(prom, cause, "pending", 30, KILL, **labels)
    firing = wait_state(prom, cause, "firing", 60, KILL, **labels)
    timing(KILL, "kill -> pending", pending)
    timing(KILL, "kill -> firing", firing)
    assert firing - pending > 5  # the rule's `for: 10s`, with a scrape's slack either side
    (alert,) = prom.alerts(KILL, symbol=SYMBOL)
    assert alert["labels"]["severity"] == "critical"
    assert alert["annotations"]["summary"] == f"Kill switch fired for {SYMBOL} (MANUAL)"
    # The 15-minute halt rule sees the same series: pending, as it should be.
    assert prom.alert_state("MMSymbolHalted", symbol=SYMBOL) == "pending"

    reset = time.monotonic()
    assert service.command(Command.RESET, SYMBOL)[0] == 200
    cleared = wait_state(prom, reset, None, 30, KILL, symbol=SYMBOL)
    wait_state(prom, reset, None, 30, "MMSymbolHalted", symbol=SYMBOL)
    timing(KILL, "reset -> cleared", cleared)


@pytest.mark.long  # a minute-long rule window: make test-long
def test_an_active_symbol_without_orders_fires_not_quoting_and_fresh_data_clears_it(
    service_factory: ServiceFactory, prometheus_factory: Callable[[str], Prometheus]
) -> None:
    service, prom = watched(
        service_factory, prometheus_factory, check_staleness=True, staleness_threshold_ms=1500
    )
    assert prom.alerts(NOT_QUOTING) == []

    cause = time.monotonic()
    service.exchange.set_faults(paused_symbols=[SYMBOL])  # its book goes stale: quotes pulled
    pending = wait_state(prom, cause, "pending", 30, NOT_QUOTING, symbol=SYMBOL)
    assert service.state_name(SYMBOL) == "ACTIVE"  # STALE_DATA halts nothing (D7)
    firing = wait_state(prom, cause, "firing", 120, NOT_QUOTING, symbol=SYMBOL)
    timing(NOT_QUOTING, "feed paused -> pending", pending)
    timing(NOT_QUOTING, "feed paused -> firing", firing)
    assert firing - pending > 50  # the rule's `for: 1m`, with a scrape's slack either side

    cure = time.monotonic()
    service.exchange.clear_faults()
    cleared = wait_state(prom, cure, None, 60, NOT_QUOTING, symbol=SYMBOL)
    timing(NOT_QUOTING, "feed back -> cleared", cleared)
    assert len(service.open_orders(SYMBOL)) == 2


@pytest.mark.long  # make test-long: promtool tests the rule; the kill alert runs end to end
def test_rejected_orders_fire_the_reject_rate_alert_then_the_reject_storm_kill_alert(
    service_factory: ServiceFactory, prometheus_factory: Callable[[str], Prometheus]
) -> None:
    service, prom = watched(service_factory, prometheus_factory, enable=False)
    prom.wait_scraped(f'mm_order_rejects_total{{symbol="{SYMBOL}"}} == 0')

    service.exchange.set_faults(reject_rate=1.0)  # the Order Service rejects every place
    cause = time.monotonic()
    assert service.command(Command.ENABLE, SYMBOL)[0] == 200
    rejects = wait_state(prom, cause, "firing", 60, "MMOrderRejectRate", symbol=SYMBOL)
    timing("MMOrderRejectRate", "enable with every place rejected -> firing", rejects)
    labels = {"symbol": SYMBOL, "reason": "REJECT_STORM"}
    firing = wait_state(prom, cause, "firing", 60, KILL, **labels)
    timing(KILL, "enable with every place rejected -> REJECT_STORM firing", firing)
    assert service.state_name(SYMBOL) == "HALTED"


@pytest.mark.long  # make test-long: promtool tests the rule; the kill alert runs end to end
def test_an_undecodable_message_fires_the_decode_errors_alert(
    service_factory: ServiceFactory,
    prometheus_factory: Callable[[str], Prometheus],
    kafka_bootstrap: str,
) -> None:
    _service, prom = watched(service_factory, prometheus_factory)
    # At 0 before the first error (the metric touches it), so one error is an increase.
    prom.wait_scraped(f'mm_decode_errors_total{{topic="{topics.TRADES}"}} == 0')

    producer = Producer({"bootstrap.servers": kafka_bootstrap})
    cause = time.monotonic()
    producer.produce(topics.TRADES, b"\x00garbage that is not avro", SYMBOL)
    producer.flush(10)
    firing = wait_state(prom, cause, "firing", 60, "MMDecodeErrors", topic=topics.TRADES)
    timing("MMDecodeErrors", "garbage produced -> firing", firing)


@pytest.mark.long  # a minute-long rule window: make test-long
def test_a_worker_killed_three_times_fires_the_restart_alert(
    service_factory: ServiceFactory, prometheus_factory: Callable[[str], Prometheus]
) -> None:
    service, prom = watched(service_factory, prometheus_factory, enable=False)
    prom.wait_scraped(f'mm_worker_restarts_total{{symbol="{SYMBOL}"}} == 0')

    for attempt in range(3):
        pid = int(service.command(Command.STATUS, SYMBOL)[1]["pid"])
        if attempt == 2:
            cause = time.monotonic()
        os.kill(pid, signal.SIGKILL)

        def restarted(old: int = pid) -> bool:
            code, body = service.command(Command.STATUS, SYMBOL)
            return code == 200 and int(body["pid"]) != old

        wait_for(restarted, 90, f"restart {attempt + 1}")
    firing = wait_state(prom, cause, "firing", 60, "MMWorkerRestarting", symbol=SYMBOL)
    timing("MMWorkerRestarting", "third SIGKILL -> firing", firing)


@pytest.mark.long  # a minute-long rule window: make test-long
def test_the_metrics_endpoint_down_fires_metrics_down_and_its_return_clears_it(
    service_factory: ServiceFactory, prometheus_factory: Callable[[str], Prometheus]
) -> None:
    service, prom = watched(service_factory, prometheus_factory, enable=False)

    cause = time.monotonic()
    service.stop("metrics")
    pending = wait_state(prom, cause, "pending", 30, "MMMetricsDown", job="mmsvc")
    firing = wait_state(prom, cause, "firing", 120, "MMMetricsDown", job="mmsvc")
    timing("MMMetricsDown", "endpoint stopped -> pending", pending)
    timing("MMMetricsDown", "endpoint stopped -> firing", firing)

    cure = time.monotonic()
    service.start("metrics")
    cleared = wait_state(prom, cure, None, 60, "MMMetricsDown", job="mmsvc")
    timing("MMMetricsDown", "endpoint back -> cleared", cleared)
