"""Broker liveness for the lag rule (D8): the leaders' last receive, from librdkafka statistics."""

from __future__ import annotations

import json

from mmsvc.adapters.kafka.consumer import broker_heard_at


def _stats(**brokers: dict[str, object]) -> str:
    return json.dumps({"brokers": brokers})


def test_the_most_silent_partition_leader_is_what_counts() -> None:
    stats = _stats(
        a={"rxidle": 2_000, "toppars": {"t-0": {}}},
        b={"rxidle": 4_000_000, "toppars": {"t-1": {}}},
        bootstrap={"rxidle": 90_000_000, "toppars": {}},  # leads nothing: ignored
    )
    assert broker_heard_at(stats, now=100.0) == 96.0


def test_unknown_when_no_leader_has_received_anything_or_the_stats_are_garbage() -> None:
    assert broker_heard_at(_stats(a={"rxidle": -1, "toppars": {"t-0": {}}}), now=1.0) is None
    assert broker_heard_at("not json", now=1.0) is None
    assert (
        broker_heard_at(json.dumps({"brokers": {"a": {"rxidle": "x", "toppars": {"t": {}}}}}), 1.0)
        is None
    )
