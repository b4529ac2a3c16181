"""Kill switches measured over time: reject storms, Kafka lag, timeouts, stale episodes."""

from __future__ import annotations

from mmsvc.domain.killswitch import (
    RejectStorm,
    StaleEpisodes,
    response_timeout,
)
from mmsvc.domain.model import RiskTrigger


def test_reject_storm_fires_on_the_fifth_reject_within_the_window() -> None:
    storm = RejectStorm(count=5, window_ms=60_000)
    assert all(storm.record(f"c{i}", i * 1_000) is None for i in range(4))
    decision = storm.record("c4", 4_000)
    assert decision is not None
    assert decision.trigger is RiskTrigger.REJECT_STORM


def test_rejects_outside_the_window_do_not_count() -> None:
    storm = RejectStorm(count=5, window_ms=60_000)
    for i in range(4):
        storm.record(f"c{i}", i)
    assert storm.record("late", 60_003) is None  # c0..c3 are older than 60 s by then
    assert storm.in_window(60_003) == 1


def test_reject_storm_counts_a_client_order_id_once() -> None:
    """D10: a 4xx and the REJECTED event of the same order are one reject."""
    storm = RejectStorm(count=5, window_ms=60_000)
    for _ in range(10):
        assert storm.record("same-order", 1_000) is None
    assert storm.in_window(1_000) == 1


def test_reset_clears_the_window() -> None:
    storm = RejectStorm(count=2, window_ms=60_000)
    storm.record("a", 0)
    storm.clear()
    assert storm.record("b", 1) is None


def test_response_over_budget_kills() -> None:
    assert response_timeout(50, 50, "POST /v1/orders") is None
    breach = response_timeout(51, 50, "POST /v1/orders")
    assert breach is not None
    assert breach.trigger is RiskTrigger.RESPONSE_TIMEOUT
    assert "POST /v1/orders" in breach.detail


def test_stale_data_reports_one_event_per_episode() -> None:
    episodes = StaleEpisodes()
    assert episodes.observe(None) is None
    first = episodes.observe("book unknown")
    assert first is not None
    assert first.trigger is RiskTrigger.STALE_DATA
    assert episodes.observe("book unknown") is None
    assert episodes.stale
    assert episodes.observe(None) is None
    assert not episodes.stale
    assert episodes.observe("book 6000 ms old") is not None
