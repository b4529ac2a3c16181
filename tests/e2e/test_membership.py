"""Symbols follow Kafka partitions across supervisors (ARCHITECTURE D28, D29, D32).

Two "hosts" (two supervisors with their own run directories and control
sockets) share one database, one account and one KAFKA_GROUP_ID. The group's
cooperative-sticky assignment of engine.event.v1 splits the partition numbers
between them, and each runs the workers of exactly the symbols in its share:
every symbol has one owner (its lease, its worker, its orders at the venue).
A supervisor killed with SIGKILL takes its workers down with it (parent-death
signal: they cancel and release their leases); once the group notices (the
session timeout), the survivor is assigned the numbers and its new workers
take the symbols over in their recorded state: an ACTIVE symbol quotes again
without anyone enabling it. A supervisor stopped with SIGTERM (a drained
host) stops its workers first, then leaves the group: its symbols move with no
kill and no pause. Each run ends with the venue's open orders of our account
equal to the database's.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
import uuid
from functools import partial
from pathlib import Path

import pytest
from confluent_kafka import Consumer
from sqlalchemy import text

from mmsvc.adapters.db.orders import OrderRepository
from mmsvc.adapters.kafka import topics
from mmsvc.adapters.zmq.control_client import SupervisorUnavailableError
from mmsvc.domain.partitioning import partition_of
from mmsvc.domain.state import Command
from tests.e2e.conftest import Service, ServiceFactory, add_config
from tests.fixtures.waiting import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

# The demo instruments of the session's simulator: partitions 2, 5 and 4 of 6 (murmur2).
SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOL-PERP"]
HOSTS = ("host-a", "host-b")
# A new group's first join on the dev broker takes about half the session timeout; a
# SIGKILLed member is noticed at its session timeout (6 s), then the rebalance and the
# new workers' start-up: generous bounds for a loaded 2-core box.
JOINED_S = 60
TAKEOVER_S = 60
FROZEN_S = 4.0  # a partitioned host: past the e2e session timeout (2 s) and a 3 s lag rule
WATCHED_S = 6.0  # the woken host checks its lag within a second of SIGCONT
MEMBER_TRIES = 5


def lease_owners(service: Service) -> dict[str, tuple[str, int, bool]]:
    """symbol -> (host of the lease's owner, epoch, live now)."""
    with service.sessions() as session:
        rows = session.execute(
            text(
                "SELECT symbol, owner, epoch, released_at IS NULL"
                " AND lease_expires_at > clock_timestamp() AS live FROM mm_leases"
            )
        ).all()
    return {r.symbol: (str(r.owner).rpartition("/")[0], int(r.epoch), bool(r.live)) for r in rows}


def workers(service: Service) -> set[str]:
    """The symbols whose worker runs under this supervisor (its PING)."""
    try:
        status, body = service.command(Command.PING, timeout_s=5)
    except SupervisorUnavailableError:
        return set()
    return (
        {s for s, w in body.get("workers", {}).items() if w.get("alive")}
        if status == 200
        else set()
    )


def venue_epochs(service: Service, symbol: str) -> set[int | None]:
    """The epochs on the rows of the symbol's open orders at the venue (D32); None: no row."""
    ids = [uuid.UUID(o["client_order_id"]) for o in service.open_orders(symbol)]
    with service.sessions() as session:
        rows: dict[uuid.UUID, int | None] = dict(
            session.execute(
                text(
                    "SELECT client_order_id, epoch FROM mm_orders WHERE client_order_id = ANY(:i)"
                ),
                {"i": ids},
            ).all()
        )
    return {rows.get(i) for i in ids}


def resting_of_epoch(service: Service, symbol: str, epoch: int) -> bool:
    return venue_epochs(service, symbol) == {epoch}


def db_open_ids(service: Service) -> set[str]:
    with service.sessions() as session:
        orders = OrderRepository(session)
        return {str(o.client_order_id) for s in SYMBOLS for o in orders.list_open(s)}


def venue_open_ids(service: Service) -> set[str]:
    return {o["client_order_id"] for o in service.open_orders()}


def venue_agrees(service: Service) -> None:
    """Every run ends here: the venue's open orders of our account are the database's."""
    wait_for(
        lambda: venue_open_ids(service) == db_open_ids(service),
        30,
        "the venue's open orders of our account equal the database's",
    )


def all_quote_active(service: Service, after: str) -> None:
    """Every symbol quotes and is ACTIVE (no kill, no pause) ``after`` something."""
    for symbol in SYMBOLS:
        wait_for(partial(service.quotes, symbol), 30, f"{symbol} quoting {after}")
        assert service.state_name(symbol) == "ACTIVE"


def two_hosts_quoting(
    service_factory: ServiceFactory, **settings: str
) -> tuple[dict[str, Service], dict[str, str]]:
    """Two supervisors of one group, every symbol ACTIVE and quoting; (hosts, owner of each)."""
    first = service_factory(None, MMSVC_HOST_ID=HOSTS[0], **settings)
    second = service_factory(host_of=first, MMSVC_HOST_ID=HOSTS[1], **settings)
    hosts = {HOSTS[0]: first, HOSTS[1]: second}
    for symbol in SYMBOLS:
        add_config(first.sessions, symbol)
    first.start("supervisor")
    second.start("supervisor")

    def split() -> bool:  # both members joined, every symbol run by exactly one of them
        running = {h: workers(s) for h, s in hosts.items()}
        return (
            all(running.values())
            and sorted(running[HOSTS[0]] | running[HOSTS[1]]) == sorted(SYMBOLS)
            and not running[HOSTS[0]] & running[HOSTS[1]]
        )

    wait_for(split, JOINED_S, "the symbols split between the two supervisors")
    owner_of = {s: h for h, service in hosts.items() for s in workers(service)}
    for symbol in SYMBOLS:
        hosts[owner_of[symbol]].wait_ready([symbol])
        assert hosts[owner_of[symbol]].command(Command.ENABLE, symbol)[0] == 200
    for symbol in SYMBOLS:
        wait_for(partial(first.quotes, symbol), 30, f"{symbol} quotes")

    # One owner per symbol: its lease names the host that runs its worker, and every
    # order of the symbol resting at the venue was written under that lease's epoch.
    leases = lease_owners(first)
    for symbol in SYMBOLS:
        host, epoch, live = leases[symbol]
        assert (host, live) == (owner_of[symbol], True)
        wait_for(partial(resting_of_epoch, first, symbol, epoch), 30, f"{symbol} of one epoch")
    return hosts, owner_of


def the_busier(owner_of: dict[str, str]) -> tuple[str, str, list[str]]:
    """(the host running the most symbols, the other, the symbols that will move)."""
    victim = max(HOSTS, key=lambda h: sum(1 for s in SYMBOLS if owner_of[s] == h))
    survivor = HOSTS[1] if victim == HOSTS[0] else HOSTS[0]
    return victim, survivor, [s for s in SYMBOLS if owner_of[s] == victim]


def moved_and_quoting(hosts: dict[str, Service], survivor: str, moved: list[str]) -> bool:
    """The survivor holds live leases of the moved symbols and runs every symbol's worker."""
    now = lease_owners(hosts[survivor])
    alive = all(now[s][0] == survivor and now[s][2] for s in moved)
    return alive and set(SYMBOLS) <= workers(hosts[survivor])


def test_each_symbol_has_one_owner_and_moves_to_the_survivor_of_a_kill(
    service_factory: ServiceFactory,
) -> None:
    hosts, owner_of = two_hosts_quoting(service_factory)
    first = hosts[HOSTS[0]]
    victim, survivor, moved = the_busier(owner_of)
    hosts[victim].procs.pop("supervisor").send_signal(signal.SIGKILL)
    killed_at = time.monotonic()

    wait_for(
        partial(moved_and_quoting, hosts, survivor, moved),
        TAKEOVER_S,
        f"{moved} taken over by {survivor}",
    )
    taken_s = time.monotonic() - killed_at
    for symbol in moved:  # moved within TAKEOVER_WINDOW: ACTIVE carries on (D28, D29)
        wait_for(partial(first.quotes, symbol), 30, f"{symbol} quoting again on {survivor}")
        assert first.state_name(symbol) == "ACTIVE"
    # A figure for the notes (run with -s), never asserted: session timeout, rebalance, start-up.
    print(
        f"kill -9 of {victim}: leases taken after {taken_s:.1f}s, "
        f"{moved} quoting again after {time.monotonic() - killed_at:.1f}s"
    )
    leases = lease_owners(first)
    for symbol in SYMBOLS:  # the orders resting now are the survivor's alone
        wait_for(
            partial(resting_of_epoch, first, symbol, leases[symbol][1]),
            30,
            f"{symbol}'s resting orders all of epoch {leases[symbol][1]}",
        )
    venue_agrees(first)


def test_a_drained_host_hands_its_symbols_over_without_a_kill_or_a_pause(
    service_factory: ServiceFactory,
) -> None:
    """SIGTERM (a drain): workers cancel and release, then the partitions move (D28)."""
    hosts, owner_of = two_hosts_quoting(service_factory)
    first = hosts[HOSTS[0]]
    drained, survivor, moved = the_busier(owner_of)
    assert hosts[drained].stop("supervisor") == 0
    wait_for(
        partial(moved_and_quoting, hosts, survivor, moved),
        TAKEOVER_S,
        f"{moved} handed over to {survivor}",
    )
    all_quote_active(first, f"on {survivor}")  # no kill, no pause
    venue_agrees(first)


def process_tree(pid: int) -> list[int]:
    """``pid`` and every descendant (the template and the workers it forked, D27)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*/children"):
            todo.extend(int(child) for child in task.read_text().split())
    return found


def test_a_host_frozen_past_its_session_and_the_lag_threshold_kills_nothing(
    service_factory: ServiceFactory,
) -> None:
    """The chaos run's partitioned host (issue 15): frozen past the session timeout it was
    expelled and its partitions moved; woken, it must not judge as lag the time it did
    not run. Its cached watermark and its last broker answer, both from before the stop,
    read as "caught up 10 s ago" and it raised a global KAFKA_LAG kill of every symbol."""
    hosts, owner_of = two_hosts_quoting(service_factory, KILL_SWITCH_KAFKA_LAG_THRESHOLD="3s")
    first = hosts[HOSTS[0]]
    frozen, _, _ = the_busier(owner_of)
    pids = process_tree(hosts[frozen].procs["supervisor"].pid)
    for pid in pids:  # the host cut off: its supervisor and its workers
        os.kill(pid, signal.SIGSTOP)
    time.sleep(FROZEN_S)  # past the 2 s session timeout and the 3 s lag threshold
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)

    def halted() -> list[str]:
        return [s for s in SYMBOLS if first.state_name(s) == "HALTED"]

    deadline = time.monotonic() + WATCHED_S  # the woken host's first checks are what failed
    while time.monotonic() < deadline:
        assert halted() == [], f"halted after the wake: {halted()}"
        time.sleep(0.25)
    for symbol in SYMBOLS:
        wait_for(partial(first.quotes, symbol), TAKEOVER_S, f"{symbol} quoting after the wake")
    assert halted() == []
    venue_agrees(first)


def revoked(service: Service, symbols: set[str]) -> bool:
    return not symbols & workers(service)


class PassingMember:
    """A member of the service's group that takes partitions and runs no worker: a host
    that joins and leaves before starting anything (a failed deploy, a flapping node)."""

    def __init__(self, service: Service) -> None:
        self._consumer = Consumer(
            {
                "bootstrap.servers": service.env["KAFKA_BROKERS"],
                "group.id": service.env["KAFKA_GROUP_ID"],
                "partition.assignment.strategy": "cooperative-sticky",  # D32, as the service
                "session.timeout.ms": 2000,
                "enable.auto.commit": False,
            }
        )
        self._consumer.subscribe([topics.ENGINE_EVENTS])

    def partition_count(self) -> int:
        listing = self._consumer.list_topics(topics.ENGINE_EVENTS, timeout=10)
        return len(listing.topics[topics.ENGINE_EVENTS].partitions)

    def numbers(self) -> set[int]:
        self._consumer.poll(0.1)
        return {tp.partition for tp in self._consumer.assignment()}

    def leave(self) -> None:
        self._consumer.close()


def test_symbols_handed_back_to_their_supervisor_carry_on_active(
    service_factory: ServiceFactory,
) -> None:
    """D28, D29: a symbol that went away through the group and came back to the same
    supervisor, with no process restarted, keeps its recorded state. The chaos run found a
    survivor whose consumer lost its whole assignment and was given it back 4 s later:
    its new workers took the leases from its own previous ones and came up PAUSED, seven
    symbols paused that no restart and no operator touched."""
    service = service_factory(MMSVC_HOST_ID=HOSTS[0])
    for symbol in SYMBOLS:
        add_config(service.sessions, symbol)
    service.start("supervisor")
    wait_for(lambda: workers(service) == set(SYMBOLS), JOINED_S, "every symbol's worker")
    service.wait_ready(SYMBOLS)
    for symbol in SYMBOLS:
        assert service.command(Command.ENABLE, symbol)[0] == 200
    for symbol in SYMBOLS:
        wait_for(partial(service.quotes, symbol), 30, f"{symbol} quotes")
    moved: list[str] = []
    for _ in range(MEMBER_TRIES):  # the assignor decides which numbers go: until one of ours
        member = PassingMember(service)
        wait_for(member.numbers, JOINED_S, "the passing member holds partitions")
        count = member.partition_count()
        moved = [s for s in SYMBOLS if partition_of(s, count) in member.numbers()]
        if moved:
            gone = partial(revoked, service, set(moved))
            wait_for(gone, JOINED_S, f"{moved} revoked")
        member.leave()
        if moved:
            break
    assert moved, f"no symbol's partition went to the passing member in {MEMBER_TRIES} joins"

    wait_for(lambda: workers(service) == set(SYMBOLS), TAKEOVER_S, f"{moved} handed back")
    all_quote_active(service, "after the hand-back")
    venue_agrees(service)
