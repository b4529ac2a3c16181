"""The worker's hold on a dependency outage: pull once, retry with backoff (D25)."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy.exc import IntegrityError, OperationalError

from mmsvc.processes.worker.outage import RETRY_FIRST_S, RETRY_MAX_S, Outage


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def refused() -> OperationalError:
    return OperationalError("SELECT 1", {}, Exception("connection refused"))


def test_an_unreachable_database_pulls_quotes_once_per_outage_and_keeps_the_process_up() -> None:
    pulls: list[int] = []
    outage = Outage("PostgreSQL", "BTCUSDT", pull=lambda: pulls.append(1), clock=Clock())
    for _ in range(3):
        with outage.guard():
            raise refused()
    assert outage.active
    assert pulls == [1]


def test_a_bad_statement_is_a_bug_and_propagates() -> None:
    outage = Outage("PostgreSQL", "BTCUSDT", pull=lambda: None, clock=Clock())
    with pytest.raises(IntegrityError), outage.guard():
        raise IntegrityError("INSERT", {}, Exception("duplicate key"))
    assert not outage.active


def test_recovery_is_retried_with_growing_pauses_until_it_succeeds() -> None:
    clock = Clock()
    outage = Outage("PostgreSQL", "BTCUSDT", pull=lambda: None, clock=clock)
    outage.down(refused())
    attempts: list[float] = []

    def still_down() -> None:
        attempts.append(clock.now)
        raise refused()

    for _ in range(200):
        clock.now += 0.05
        outage.retry(still_down)
    gaps = [b - a for a, b in itertools.pairwise(attempts)]
    assert attempts[0] >= RETRY_FIRST_S
    assert gaps[0] <= 2 * RETRY_FIRST_S + 0.05
    assert RETRY_MAX_S <= gaps[-1] <= RETRY_MAX_S + 0.05  # grown to the cap, never past it
    clock.now += RETRY_MAX_S
    assert outage.retry(lambda: None)
    assert not outage.active
