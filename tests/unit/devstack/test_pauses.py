"""The simulator measures its own pauses (issue 12's soak: answers of 51 and 54 ms)."""

from __future__ import annotations

import gc
import logging
import time

import pytest

from mmsvc.devstack.exchange import pauses
from mmsvc.devstack.exchange.pauses import GcPauses


def test_every_collection_is_timed_while_installed_and_a_long_one_logged(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.WARNING, logger=pauses.__name__)
    monkeypatch.setattr(pauses, "LOGGED_PAUSE_MS", 0.0)  # every collection is "long"
    watch = GcPauses()
    watch.install()
    try:
        gc.collect(2)
    finally:
        watch.close()
    logged = [r.getMessage() for r in caplog.records]
    assert len(logged) == 1
    assert logged[0].startswith("gc pause: generation 2 took ")
    gc.collect(2)  # closed: no longer timed
    assert len(caplog.records) == 1


def test_a_slow_answer_is_logged_with_where_its_time_went(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger=pauses.__name__)
    began = time.time_ns() - 30_000_000
    pauses.answered("POST", "/v1/orders", began, app_ns=300_000, cpu_ns=500_000)
    pauses.answered("GET", "/v1/orders", time.time_ns())
    assert len(caplog.records) == 1
    line = caplog.records[0].getMessage()
    assert line.startswith("slow answer: POST /v1/orders took 3")
    assert line.endswith("(app 0.3 ms, thread cpu 0.5 ms)")
