"""Any host's admin API steers any symbol (ARCHITECTURE D28, D30, D32).

Two supervisors of one group split the symbols as in test_membership; the
admin API runs beside the one that holds fewer of them, so every command
about the other host's symbols must travel through PostgreSQL (the commands
table and NOTIFY) to the supervisor that owns them. Each test checks what
happened where it matters: the states in PostgreSQL and the orders resting at
the venue.
"""

from __future__ import annotations

import signal
from functools import partial
from typing import Any

import pytest
import requests

from mmsvc.devstack import stack
from mmsvc.domain.state import Command
from tests.e2e.conftest import Service, ServiceFactory, add_config
from tests.e2e.test_membership import HOSTS, JOINED_S, SYMBOLS, lease_owners, workers
from tests.fixtures.waiting import wait_for, wait_serving

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

ANSWER_S = 30


def api(service: Service, method: str, path: str, body: Any = None) -> requests.Response:
    url = f"http://127.0.0.1:{service.env['HTTP_PORT']}{path}"
    return requests.request(method, url, json=body, timeout=ANSWER_S)


def two_hosts(service_factory: ServiceFactory) -> tuple[Service, Service, list[str]]:
    """(the host the admin API runs on, the other one, the symbols the other one owns).

    Every symbol PAUSED, split between the two supervisors; the admin API is
    started beside the supervisor that holds fewer symbols (maybe none).
    """
    first = service_factory(
        MMSVC_HOST_ID=HOSTS[0], HTTP_PORT=str(stack.free_port()), ADMIN_WORKERS="1"
    )
    second = service_factory(
        host_of=first, MMSVC_HOST_ID=HOSTS[1], HTTP_PORT=str(stack.free_port())
    )
    hosts = {HOSTS[0]: first, HOSTS[1]: second}
    for symbol in SYMBOLS:
        add_config(first.sessions, symbol, base_spread_bps=200)  # wide: no real fills
    first.start("supervisor")
    second.start("supervisor")

    def split() -> dict[str, set[str]] | None:
        running = {h: workers(s) for h, s in hosts.items()}
        every = running[HOSTS[0]] | running[HOSTS[1]]
        disjoint = not running[HOSTS[0]] & running[HOSTS[1]]
        return running if sorted(every) == sorted(SYMBOLS) and disjoint else None

    running = wait_for(split, JOINED_S, "the symbols split between the two supervisors")
    here = min(HOSTS, key=lambda h: len(running[h]))
    there = HOSTS[1] if here == HOSTS[0] else HOSTS[0]
    owned = sorted(running[there])
    hosts[there].wait_ready(owned)
    wait_for(
        lambda: all(
            lease_owners(first).get(s, ("", 0, False))[::2] == (there, True) for s in owned
        ),
        30,
        f"{there}'s live leases of {owned}",
    )
    admin = hosts[here]
    admin.start("admin")
    wait_serving(
        f"http://127.0.0.1:{admin.env['HTTP_PORT']}/healthz",
        admin.procs["admin"],
        "the admin API",
        log=admin.run_dir / "admin.log",
    )
    return admin, hosts[there], owned


def leased_to(service: Service, host: str, symbols: list[str]) -> bool:
    leases = lease_owners(service)
    return all(s in leases and leases[s][0] == host and leases[s][2] for s in symbols)


def state_of(service: Service, symbol: str) -> str | None:
    return service.state_name(symbol)


def released_or_taken(service: Service, host: str, symbol: str) -> bool:
    """The symbol's lease is between owners, or already the survivor's."""
    owner, _, live = lease_owners(service)[symbol]
    return not live or owner == host


def in_state(service: Service, symbol: str, state: str) -> bool:
    return service.state_name(symbol) == state


def flat(service: Service, symbol: str) -> bool:
    return service.open_orders(symbol) == []


def test_enable_pause_and_kill_reach_a_symbol_the_other_host_owns(
    service_factory: ServiceFactory,
) -> None:
    admin, owner, owned = two_hosts(service_factory)
    symbol = owned[0]

    enabled = api(admin, "POST", f"/v1/mm-configs/{symbol}/enable")
    assert enabled.status_code == 200, enabled.text
    assert enabled.json()["state"] == "ACTIVE"
    wait_for(partial(owner.quotes, symbol), 30, f"{symbol} quoting on its owner")

    paused = api(admin, "POST", f"/v1/mm-configs/{symbol}/pause")
    assert paused.status_code == 200, paused.text
    assert state_of(owner, symbol) == "PAUSED"
    wait_for(partial(flat, owner, symbol), 15, f"{symbol}'s orders canceled at the venue")

    assert api(admin, "POST", f"/v1/mm-configs/{symbol}/enable").status_code == 200
    wait_for(partial(owner.quotes, symbol), 30, f"{symbol} quoting again")
    killed = api(admin, "POST", "/v1/mm/emergency/kill", {"symbol": symbol})
    assert killed.status_code == 200, killed.text
    assert killed.json()["handled_by"] == "supervisor"  # its owner's, through PostgreSQL
    assert killed.json()["halted"] == [symbol]
    assert state_of(owner, symbol) == "HALTED"
    wait_for(partial(flat, owner, symbol), 15, f"{symbol}'s orders canceled at the venue")

    # A refusal keeps its shape: the owner's worker answers 409 with the state.
    refused = api(admin, "POST", f"/v1/mm-configs/{symbol}/enable")
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"]
    assert refused.json()["error"]["message"]


def test_an_emergency_kill_and_reset_through_one_host_reach_the_other(
    service_factory: ServiceFactory,
) -> None:
    admin, owner, owned = two_hosts(service_factory)
    active, paused = owned[:-1] or owned, owned[-1]
    for symbol in active:  # one of the owner's symbols stays PAUSED, as an operator left it
        assert owner.command(Command.ENABLE, symbol)[0] == 200  # on its own host
    for symbol in active:
        wait_for(partial(owner.quotes, symbol), 30, f"{symbol} quoting")

    killed = api(admin, "POST", "/v1/mm/emergency/kill")
    assert killed.status_code == 200, killed.text
    assert killed.json()["kill_switch_active"] is True
    for symbol in SYMBOLS:  # every symbol of every host, PAUSED ones too (D7)
        wait_for(partial(in_state, owner, symbol, "HALTED"), 15, f"{symbol} HALTED")
    wait_for(lambda: owner.open_orders() == [], 15, "zero open orders at the venue")
    assert sorted(workers(owner)) == owned  # halted, not stopped: its workers still run

    reset = api(admin, "POST", "/v1/mm/reset")
    assert reset.status_code == 200, reset.text
    assert reset.json()["global_flag_cleared"] is True
    assert set(owned) <= set(reset.json()["reset"])  # the other host's symbols too
    for symbol in SYMBOLS:
        assert state_of(owner, symbol) == "PAUSED"
    assert api(admin, "POST", f"/v1/mm-configs/{paused}/enable").status_code == 200
    wait_for(partial(owner.quotes, paused), 30, f"{paused} quoting after the reset")


def test_a_kill_sent_while_a_symbol_moves_lands_and_the_next_owner_keeps_it(
    service_factory: ServiceFactory,
) -> None:
    """Between owners a command answers 503 MOVING; a kill is recorded and applied (D30)."""
    admin, owner, owned = two_hosts(service_factory)
    for symbol in owned:
        assert owner.command(Command.ENABLE, symbol)[0] == 200  # on its own host
    for symbol in owned:
        wait_for(partial(owner.quotes, symbol), 30, f"{symbol} quoting")

    # kill -9 of the owner: its workers cancel and release their leases (parent-death
    # signal); the group gives the partitions to the admin's host after its session timeout.
    owner.procs.pop("supervisor").send_signal(signal.SIGKILL)
    symbol = owned[0]
    here = admin.env["MMSVC_HOST_ID"]
    wait_for(partial(released_or_taken, admin, here, symbol), 30, f"{symbol}'s lease released")
    # The session timeout (6 s) keeps the symbol between owners for seconds from here;
    # only a box too loaded to release the lease in that time lets the survivor be first.
    moving = not lease_owners(admin)[symbol][2] and symbol not in workers(admin)
    answered = api(admin, "POST", f"/v1/mm-configs/{symbol}/pause")
    if moving:
        assert answered.status_code == 503, answered.text
        assert answered.json()["error"]["code"] == "MOVING"
    killed = api(admin, "POST", "/v1/mm/emergency/kill", {"symbol": symbol})
    assert killed.status_code == 200, killed.text
    if moving:
        assert killed.json()["handled_by"] == "admin"  # recorded here, for the next owner
    assert state_of(admin, symbol) == "HALTED"

    wait_for(lambda: symbol in workers(admin), 60, f"{symbol} taken over by the admin's host")
    wait_for(lambda: lease_owners(admin)[symbol][2], 30, f"{symbol}'s new lease")
    admin.wait_ready([symbol])
    assert state_of(admin, symbol) == "HALTED"  # the next owner applied the recorded kill
    wait_for(partial(flat, admin, symbol), 15, f"zero open orders of {symbol}")
    for other in owned[1:]:  # the symbols that moved without a kill quote again (D28)
        wait_for(partial(admin.quotes, other), 60, f"{other} quoting on the survivor")
    assert state_of(admin, symbol) == "HALTED"
