"""The simulator measures its own pauses (issue 12's soak: two answers of 51 and 54 ms)."""

from __future__ import annotations

import gc
import logging
import time
from collections.abc import Iterator

import pytest

from mmsvc.devstack.exchange import pauses
from mmsvc.devstack.exchange.pauses import GcPauses, freeze_interval_s


@pytest.fixture
def unfrozen() -> Iterator[None]:
    yield
    gc.unfreeze()


@pytest.mark.usefixtures("unfrozen")
def test_every_collection_is_timed_and_counted() -> None:
    watch = GcPauses(freeze_s=0)
    watch.install()
    try:
        gc.collect(2)
    finally:
        watch.close()
    assert watch.counts["gen2"] == 1
    assert watch.longest_ms[2] > 0
    assert gc.get_freeze_count() == 0  # freezing off: nothing moved out of sight


@pytest.mark.usefixtures("unfrozen")
def test_survivors_are_frozen_so_a_full_collection_walks_only_what_is_new() -> None:
    watch = GcPauses(freeze_s=0.01)
    watch.install()
    try:
        assert gc.get_freeze_count() > 0  # start-up's objects at once
        kept = [[i] for i in range(10_000)]  # survivors, as the order log
        deadline = time.monotonic() + 5
        while watch.counts["freezes"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert watch.counts["freezes"] > 0
        assert gc.get_freeze_count() >= len(kept)
    finally:
        watch.close()


def test_a_slow_answer_is_logged_with_its_duration(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger=pauses.__name__)
    pauses.answered("POST", "/v1/orders", time.time_ns() - 30_000_000)
    pauses.answered("GET", "/v1/orders", time.time_ns())
    assert len(caplog.records) == 1
    assert "slow answer: POST /v1/orders took 3" in caplog.records[0].getMessage()


@pytest.mark.parametrize(("raw", "seconds"), [("", 10.0), ("0", 0.0), ("2.5", 2.5)])
def test_the_freeze_interval_comes_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, raw: str, seconds: float
) -> None:
    monkeypatch.setenv("EXCHANGE_GC_FREEZE_S", raw)
    assert freeze_interval_s() == seconds


@pytest.mark.parametrize("raw", ["soon", "-1"])
def test_a_bad_freeze_interval_stops_start_up_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("EXCHANGE_GC_FREEZE_S", raw)
    with pytest.raises(SystemExit, match="EXCHANGE_GC_FREEZE_S"):
        freeze_interval_s()
