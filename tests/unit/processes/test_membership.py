"""A member runs the configured symbols of its partition numbers, and a lost database
never takes it down (D25, D28)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy.exc import OperationalError

from mmsvc.domain.partitioning import partition_of
from mmsvc.processes.supervisor import membership
from mmsvc.processes.supervisor.membership import Membership

SYMBOLS = ["BTCUSDT", "ETHUSDT", "SOL-PERP"]  # partitions 2, 5 and 4 of 6


class Member(Membership):
    """The mixin with the supervisor's state stubbed: spawns are recorded."""

    def __init__(self, numbers: list[int]) -> None:
        self.settings = cast(Any, SimpleNamespace(host_id="host-a", shadow_mode=False))
        self.sessions = cast(Any, None)
        self.pool = cast(Any, SimpleNamespace(workers={}, stop_many=self._stop_many))
        self.router = cast(Any, SimpleNamespace(detach=lambda _s: None))
        self.consumer = cast(Any, SimpleNamespace(numbers=numbers))
        self.partition_count = 6
        self.retired_at = {}
        self.handed_over = set()
        self.last_seen = {}
        self.connected = set()
        self.pending = {}
        self.spawned: list[str] = []
        self.handed_back: list[str] = []
        self.retired: list[str] = []

    def _spawn(self, symbol: str, *, handed_back: bool = False) -> None:
        self.spawned.append(symbol)
        if handed_back:
            self.handed_back.append(symbol)
        cast(Any, self.pool).workers[symbol] = object()

    def _stop_many(self, symbols: list[str], _grace_s: float) -> None:
        for symbol in symbols:
            del self.pool.workers[symbol]

    def _commit(self) -> None:
        pass

    def retire(self, symbol: str) -> None:
        self.retired.append(symbol)
        del self.pool.workers[symbol]


def configs(monkeypatch: pytest.MonkeyPatch, symbols: list[str] | None) -> None:
    """configured_symbols answers ``symbols``, or fails as PostgreSQL away does (None)."""

    def read(_sessions: object) -> list[str]:
        if symbols is None:
            raise OperationalError("SELECT", {}, Exception("connection refused"))
        return symbols

    monkeypatch.setattr(membership, "configured_symbols", read)


def test_assignment_starts_only_the_symbols_of_the_gained_numbers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configs(monkeypatch, SYMBOLS)
    member = Member([2, 4])
    member._numbers_assigned([2, 4])
    assert sorted(member.spawned) == ["BTCUSDT", "SOL-PERP"]
    assert all(partition_of(s, 6) in (2, 4) for s in member.spawned)


def test_a_symbol_revoked_then_assigned_again_is_handed_back_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """D28, D29: the group gave back what this supervisor handed over at a revocation;
    its next worker is told so (it keeps the recorded state), a later start is not."""
    configs(monkeypatch, SYMBOLS)
    member = Member([2, 4])
    member._numbers_assigned([2, 4])
    assert member.handed_back == []  # a first assignment is a start
    member._numbers_revoking([2])
    assert "BTCUSDT" not in member.pool.workers
    member._numbers_assigned([2])
    assert member.handed_back == ["BTCUSDT"]
    member._numbers_revoking([2])
    member.retire("SOL-PERP")
    member._numbers_assigned([2, 4])  # SOL-PERP was retired, not handed over
    assert member.handed_back == ["BTCUSDT", "BTCUSDT"]
    assert member.spawned.count("SOL-PERP") == 2


def test_a_config_made_on_another_host_is_started_by_the_holder(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configs(monkeypatch, ["ETHUSDT"])
    member = Member([5])
    member.follow_configs(now=100.0)
    assert member.spawned == ["ETHUSDT"]
    member.follow_configs(now=101.0)  # within FOLLOW_CONFIGS_S: no second read, no second start
    assert member.spawned == ["ETHUSDT"]


def test_a_retired_symbol_is_not_restarted_from_its_row_being_deleted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configs(monkeypatch, ["ETHUSDT"])
    member = Member([5])
    member.retired_at["ETHUSDT"] = 99.0
    member.follow_configs(now=100.0)
    assert member.spawned == []


def test_configs_unreadable_neither_raise_nor_start_anything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configs(monkeypatch, None)
    member = Member([2, 4, 5])
    member._numbers_assigned([2, 4, 5])  # inside librdkafka's callback: must not raise
    member.follow_configs(now=100.0)
    assert member.spawned == []
    configs(monkeypatch, SYMBOLS)  # PostgreSQL is back: the next round starts them
    member.follow_configs(now=100.0 + membership.FOLLOW_CONFIGS_S)
    assert sorted(member.spawned) == sorted(SYMBOLS)


def test_a_config_deleted_on_another_host_stops_its_worker_here(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    configs(monkeypatch, ["ETHUSDT"])
    member = Member([5, 2])
    member.follow_configs(now=100.0)
    configs(monkeypatch, [])  # deleted through another host's admin (idle: D4)
    member.follow_configs(now=100.0 + membership.FOLLOW_CONFIGS_S)
    assert member.retired == ["ETHUSDT"]
    assert member.pool.workers == {}
