"""Redis stopped, then restarted empty, under two ACTIVE symbols (D25: Redis is a cache).

The service runs on a private redis-server this test starts on a free port
(the machine's Redis is never touched). With Redis down no process of ours
exits, both symbols keep quoting, the admin API's status falls back to
PostgreSQL with ``live: null``, /readyz names Redis, and a global kill works
(PostgreSQL holds the flag). Each time Redis comes back empty, what the service
keeps there (live status, the supervisor's heartbeat, the kill flag's copy)
is written again without a restart. At the end the venue's open orders of
our account are the ones the database lists.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from mmsvc.adapters.db.orders import OrderRepository
from mmsvc.adapters.status.redis_store import StatusStore
from mmsvc.adapters.zmq.control_client import SupervisorUnavailableError
from mmsvc.devstack import stack
from mmsvc.domain.state import Command
from tests.e2e.conftest import Service, ServiceFactory, add_config
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SYMBOLS = ["BTCUSDT", "ETHUSDT"]
OUTAGE_S = 6.0


class PrivateRedis:
    """A redis-server of this test's own, without persistence: a restart comes back empty."""

    def __init__(self, run_dir: Path) -> None:
        self.port = stack.free_port()
        self.run_dir = run_dir
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.run_dir / "redis.log").open("ab")
        argv = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1"]
        argv += ["--save", "", "--appendonly", "no", "--dir", str(self.run_dir)]
        self.proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        wait_for(self._answers, 10, "the private redis-server to answer")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()  # SIGTERM: redis-server exits, saving nothing (--save '')
            self.proc.wait(10)
            self.proc = None

    def _answers(self) -> bool:
        client = redis.Redis(port=self.port, socket_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def pids(service: Service) -> dict[str, int]:
    """Every process of ours: the supervisor, the outbox, the admin API and each worker."""
    found = {name: proc.pid for name, proc in service.procs.items() if proc.poll() is None}
    for symbol in SYMBOLS:
        try:
            found[symbol] = int(service.command(Command.STATUS, symbol)[1]["pid"])
        except SupervisorUnavailableError:
            found[symbol] = -1  # nobody to ask: the supervisor is gone
    return found


def api(service: Service, path: str, method: str = "GET") -> requests.Response:
    url = f"http://127.0.0.1:{service.env['HTTP_PORT']}{path}"
    return requests.request(method, url, timeout=5)


def still_quoting(service: Service) -> bool:
    return all(service.quotes(symbol) for symbol in SYMBOLS)


def readyz_names_redis(service: Service) -> bool:
    return "redis" in api(service, "/readyz").json()["down"]


def holds_through_outage(service: Service, before: dict[str, int]) -> None:
    """For OUTAGE_S: the same pids, both symbols quoting, the API answering from PostgreSQL."""
    until = time.monotonic() + OUTAGE_S
    while time.monotonic() < until:
        time.sleep(1)
        assert pids(service) == before
        wait_for(partial(still_quoting, service), 5, "both symbols quoting")
        status = api(service, "/v1/mm/status")
        assert status.status_code == 200, status.text
        assert [s["live"] for s in status.json()["symbols"]] == [None, None]
        assert [s["state"] for s in status.json()["symbols"]] == ["ACTIVE", "ACTIVE"]
        wait_for(partial(readyz_names_redis, service), 5, "/readyz to name Redis")
    assert pids(service) == before


def api_sees_live(service: Service) -> bool:
    return [s["live"] for s in api(service, "/v1/mm/status").json()["symbols"]] == [True, True]


def refilled(store: StatusStore) -> bool:
    live = store.read_all() or {}
    beats = store.heartbeats() or {}
    return "supervisor" in beats and all(live.get(s, {}).get("state") for s in SYMBOLS)


def database_open_orders(service: Service) -> set[str]:
    with service.sessions() as session:
        return {
            str(order.client_order_id)
            for symbol in SYMBOLS
            for order in OrderRepository(session).list_open(symbol)
        }


def venue_and_database_agree(service: Service) -> bool:
    venue = {str(order["client_order_id"]) for order in service.open_orders()}
    return venue == database_open_orders(service)


def kill_flag_copied(store: StatusStore, service: Service) -> Any:
    switch = api(service, "/v1/mm/status").json()["kill_switch"]
    return store.kill_flag() is not None and switch["redis_copy_active"] is True


def test_redis_stopped_then_back_empty_changes_no_pid_and_is_refilled(
    service_factory: ServiceFactory, private_redis: PrivateRedis
) -> None:
    service = service_factory(
        REDIS_URL=private_redis.url, HTTP_PORT=str(stack.free_port()), ADMIN_WORKERS="1"
    )
    store = StatusStore(private_redis.url, service.env["REDIS_KEY_PREFIX"])
    for symbol in SYMBOLS:
        add_config(service.sessions, symbol, base_spread_bps=200)  # wide: no real fills
    for name in ("supervisor", "outbox", "admin"):
        service.start(name)
    service.wait_ready(SYMBOLS)
    for symbol in SYMBOLS:
        assert service.command(Command.ENABLE, symbol)[0] == 200
    wait_for(partial(still_quoting, service), 30, "both symbols quoting")
    wait_for(partial(refilled, store), 10, "live status and heartbeat in Redis")
    before = pids(service)

    private_redis.stop()
    holds_through_outage(service, before)

    private_redis.start()  # empty: nothing was saved
    wait_for(partial(refilled, store), 10, "live status and heartbeat written again")
    wait_for(partial(still_quoting, service), 10, "both symbols quoting")
    wait_for(partial(api_sees_live, service), 10, "the API to show both symbols live")
    assert pids(service) == before

    # A kill with Redis down: PostgreSQL holds the flag, the workers honour it.
    private_redis.stop()
    killed = api(service, "/v1/mm/emergency/kill", "POST")
    assert killed.status_code == 200, killed.text
    assert killed.json()["kill_switch_active"] is True
    wait_for(lambda: service.open_orders() == [], 15, "every order canceled")
    assert [service.state_name(s) for s in SYMBOLS] == ["HALTED", "HALTED"]
    private_redis.start()
    wait_for(partial(kill_flag_copied, store, service), 10, "the kill flag's copy refilled")
    assert pids(service) == before
    wait_for(partial(venue_and_database_agree, service), 15, "venue and database to agree")
    store.close()
