"""``make run HOSTS=N``: N local hosts on one dev stack, one consumer group (issue 15, D28).

Starts a dev stack of its own (own run directory and database) and two hosts,
as ``make run HOSTS=2`` does: each host has its own supervisord, run
directory, MMSVC_HOST_ID and ports; a symbol created through one host's API is
run by exactly one of them, enabled through its owner and seen ACTIVE and
owned from the other; ``stack.down`` (``make stop``) stops both hosts and
leaves no order of ours at the venue and no process behind.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest
import requests

from mmsvc.devstack import hosts, run, services, stack
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

DATABASE = "mmsvc_local_hosts_test"
READ = {"Authorization": "Bearer dev-read-token"}


def status(api: str) -> dict[str, dict[str, object]]:
    answer = requests.get(f"{api}/v1/mm/status", headers=READ, timeout=10)
    answer.raise_for_status()
    return {s["symbol"]: s for s in answer.json()["symbols"]}


def active(api: str, symbol: str) -> bool:
    return status(api)[symbol]["state"] == "ACTIVE"


@pytest.mark.long  # make test-long: the make-run demo; ownership across hosts is test_membership
def test_two_local_hosts_share_a_stack_split_symbols_and_stop_together(
    tmp_path: Path,
) -> None:
    run_dir = tmp_path / "run"
    services.ensure_database(services.PG_ADMIN_URL, DATABASE, recreate=True)
    try:
        stack_env, started = run.start_hosts(run_dir, 2, database=DATABASE)
        first, second = started
        assert (first.name, second.name) == ("h1", "h2")
        assert (
            len({first.http_port, second.http_port, first.metrics_port, second.metrics_port}) == 4
        )
        assert first.run_dir != second.run_dir
        assert (second.run_dir / "control.sock").exists()

        run.create_configs(first.api, {"BTCUSDT": {}, "ETHUSDT": {}})
        owners = {s: run.enable_symbol(started, s) for s in ("BTCUSDT", "ETHUSDT")}

        assert set(owners.values()) <= {"h1", "h2"}
        for symbol, owner in owners.items():  # seen from the other host too: one owner
            wait_for(partial(active, second.api, symbol), 60, f"{symbol} ACTIVE")
            assert str(status(second.api)[symbol]["owner"]).startswith(f"{owner}/")
        for host in started:
            assert requests.get(host.metrics_url, timeout=10).status_code == 200
        wait_for(lambda: our_open_orders(stack_env) > 0, 60, "quotes at the venue")

        assert hosts.stop_all(run_dir) == ["h1", "h2"]  # make stop's first step

        assert our_open_orders(stack_env) == 0
        assert not any(hosts.supervisord_pid(h) for h in hosts.load(run_dir))
    finally:
        stack.down(run_dir)
    assert not stack.running_pids(run_dir)


def our_open_orders(stack_env: dict[str, str]) -> int:
    answer = requests.get(
        f"{stack_env['EXCHANGE_ADMIN_URL']}/v1/orders",
        params={"account_id": "00000000-0000-0000-0000-000000000001", "status": "OPEN"},
        timeout=10,
    )
    answer.raise_for_status()
    return len(answer.json()["orders"])
