"""The soak watcher reads what an operator's dashboard reads, and calls any kill a failure."""

from __future__ import annotations

from mmsvc.devstack.soak import Soak, changes, parse, report

TEXT = """\
# HELP mm_kafka_lag_seconds Kafka consumer lag (ARCHITECTURE D8).
# TYPE mm_kafka_lag_seconds gauge
mm_kafka_lag_seconds{topic="engine.event.v1"} 0.25
mm_kafka_lag_seconds{topic="md.trades.v1"} 0.0
# HELP mm_kill_switch_total Kill switch triggers.
# TYPE mm_kill_switch_total counter
mm_kill_switch_total{reason="KAFKA_LAG",symbol="BTCUSDT"} %(kills)s
# HELP mm_worker_restarts_total Worker processes restarted after dying.
# TYPE mm_worker_restarts_total counter
mm_worker_restarts_total{symbol="BTCUSDT"} 0.0
# HELP mm_state_gauge 1 for the symbol's current state, else 0.
# TYPE mm_state_gauge gauge
mm_state_gauge{state="ACTIVE",symbol="BTCUSDT"} %(active)s
mm_state_gauge{state="HALTED",symbol="BTCUSDT"} %(halted)s
"""


def scraped(kills: float = 0, halted: bool = False) -> str:
    return TEXT % {"kills": kills, "active": int(not halted), "halted": int(halted)}


def test_a_scrape_reads_lag_kills_and_states() -> None:
    scrape = parse(scraped())
    assert scrape.lag_s == {"engine.event.v1": 0.25, "md.trades.v1": 0.0}
    assert scrape.kills == {"BTCUSDT/KAFKA_LAG": 0.0}
    assert scrape.states == {"BTCUSDT": "ACTIVE"}


def test_a_kill_from_nothing_is_an_event_and_fails_the_soak() -> None:
    before, after = parse(scraped()), parse(scraped(kills=1, halted=True))
    events = changes(before, after)
    assert events == ["kill BTCUSDT/KAFKA_LAG (+1)", "BTCUSDT ACTIVE -> HALTED"]
    assert changes(before, parse(scraped())) == []
    soak = Soak(started="now", minutes=1, states_at_start=before.states, events=events)
    assert not soak.passed()
    assert Soak(started="now", minutes=1, states_at_start=before.states).passed()
    assert not Soak(started="now", minutes=1).passed()  # no demo symbol seen: nothing watched


def test_a_soak_ended_early_by_an_event_says_how_long_it_watched() -> None:
    """It stops at the first event: the report says 4.7 of 30 min, not 30 (session 8)."""
    soak = Soak(started="now", minutes=30, scrapes=56, watched_s=282.0, events=["kill"])
    assert report(soak).splitlines()[0] == "soak from now: 56 scrapes over 4.7 of 30 min"
