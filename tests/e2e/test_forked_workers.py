"""Many symbols at once (ARCHITECTURE D27): forked workers, a bounded start rate, a grace.

Eight symbols configured before the supervisor starts all come up on this
loaded 2-core box without one worker killed by the silence rule, each forked
from the template (a process whose command line is the template's, a child
of the supervisor) rather than a fresh interpreter; a SIGKILLed forked worker
has its orders canceled (D2) and comes back.
"""

from __future__ import annotations

import os
import signal

import pytest

from mmsvc.domain.state import Command
from tests.e2e.conftest import Service, ServiceFactory, add_config
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

PREFIX = "FORKD"
COUNT = 8


def _generated_symbols(service: Service) -> list[str]:
    response = service.exchange.admin(
        "POST", "/v1/instruments/generate", {"count": COUNT, "prefix": PREFIX, "msgs_per_s": 1}
    )
    response.raise_for_status()
    listed = [s for s in response.json()["created"] if s.startswith(PREFIX)]
    return listed or [f"{PREFIX}{n:04d}USDT" for n in range(1, COUNT + 1)]


def _worker_pid(service: Service, symbol: str) -> int:
    code, body = service.command(Command.STATUS, symbol)
    assert code == 200, body
    return int(body["pid"])


def _cmdline(pid: int) -> list[str]:
    with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
        return [part.decode() for part in cmdline.read().split(b"\0") if part]


def _parent(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as stat:
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def test_eight_symbols_start_at_once_forked_with_no_worker_killed_as_silent(
    service_factory: ServiceFactory,
) -> None:
    service = service_factory()
    symbols = _generated_symbols(service)[:COUNT]
    assert len(symbols) == COUNT
    for symbol in symbols:
        add_config(service.sessions, symbol)
    service.start("supervisor")
    service.wait_ready(symbols)  # every worker answers STATUS: connected, its state loaded

    supervisor_pid = service.procs["supervisor"].pid
    for symbol in symbols:
        pid = _worker_pid(service, symbol)
        assert _parent(pid) == supervisor_pid  # adopted: the supervisor reaps it (D2)
        assert "mmsvc.processes.supervisor.template" in _cmdline(pid)  # forked, not exec'd
    code, health = service.command(Command.PING)
    assert code == 200, health
    assert {s: w["restarts"] for s, w in health["workers"].items()} == dict.fromkeys(symbols, 0)
    log = (service.run_dir / "supervisor.log").read_text()
    assert "worker silent; killing it" not in log


def test_a_killed_forked_worker_has_its_orders_canceled_and_comes_back(
    service_factory: ServiceFactory,
) -> None:
    service = service_factory()
    add_config(service.sessions, "BTCUSDT")
    service.start("supervisor")
    service.start("outbox")
    service.wait_ready(["BTCUSDT"])
    assert service.command(Command.ENABLE, "BTCUSDT")[0] == 200
    wait_for(lambda: service.quotes("BTCUSDT"), 30, "quotes")
    pid = _worker_pid(service, "BTCUSDT")
    assert "mmsvc.processes.supervisor.template" in _cmdline(pid)

    os.kill(pid, signal.SIGKILL)

    wait_for(lambda: service.open_orders("BTCUSDT") == [], 30, "orders canceled (D2)")
    wait_for(
        lambda: (
            (reply := service.command(Command.STATUS, "BTCUSDT"))[0] == 200
            and reply[1]["pid"] != pid
        ),
        60,
        "the worker forked again",
    )
    assert service.state_name("BTCUSDT") == "PAUSED"
