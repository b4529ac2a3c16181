"""The worker's side of the lease: waiting for it, and a fenced-out worker's cancels (D26, D32)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from mmsvc.adapters.db.leases import Lease, LeaseHeld
from mmsvc.adapters.order_service.client import OpenOrder
from mmsvc.processes.worker.fence import cancel_own, take_lease
from tests.unit.processes.worker.stubs import Venue

LEASE = Lease("ETHUSDT", "host/2", 7, datetime(2026, 11, 30, tzinfo=UTC), takeover=False)


class Keeper:
    """A LeaseKeeper whose lease is held by someone else for `refusals` takes."""

    symbol = "ETHUSDT"

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.takes = 0

    def take(self) -> Lease:
        self.takes += 1
        if self.takes <= self.refusals:
            raise LeaseHeld("ETHUSDT: lease held by host/1 (epoch 6) for another 4.0s")
        return LEASE


class Time:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_the_lease_is_taken_once_the_holder_lets_it_go() -> None:
    keeper, time = Keeper(refusals=3), Time()
    lease = take_lease(keeper, 30.0, clock=time.clock, sleep=time.sleep)  # type: ignore[arg-type]
    assert lease == LEASE
    assert keeper.takes == 4


def test_a_lease_held_past_the_wait_is_refused_naming_the_holder() -> None:
    keeper, time = Keeper(refusals=10**6), Time()
    with pytest.raises(LeaseHeld, match="held by host/1"):
        take_lease(keeper, 30.0, clock=time.clock, sleep=time.sleep)  # type: ignore[arg-type]
    assert time.now < 30.0  # refused within the wait, never crash-looping (D27)
    assert keeper.takes > 1


def _open(order_id: str, client_order_id: str) -> OpenOrder:
    return OpenOrder(order_id, client_order_id, "ETHUSDT", "BUY", Decimal(1), Decimal(1), "NEW")


def test_a_fenced_out_worker_cancels_only_its_own_order_ids() -> None:
    venue = Venue()
    venue.open = [_open("o1", "ours-1"), _open("o2", "theirs"), _open("o3", "ours-2")]
    sent = cancel_own(venue, "ETHUSDT", ["ours-1", "ours-2", "ours-3"], ["o9"])  # type: ignore[arg-type]
    assert sorted(venue.canceled) == ["o1", "o3", "o9"]  # never the new owner's "o2" (D32)
    assert sent == 3
