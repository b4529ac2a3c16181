"""StatusStore against the real Redis, each test under a prefix of its own."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
import redis

from mmsvc.adapters import metrics
from mmsvc.adapters.status.redis_store import Beat, StatusPublisher, StatusStore, _Breaker
from mmsvc.devstack import stack
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A prefix no other test uses; every key under it is deleted afterwards."""
    prefix = f"mmsvc-test:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    keys = list(client.scan_iter(match=f"{prefix}*"))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def store(redis_url: str, prefix: str) -> Iterator[StatusStore]:
    store = StatusStore(redis_url, prefix)
    yield store
    store.close()


def test_published_status_reads_back_with_decimals_as_strings_and_a_heartbeat(
    store: StatusStore,
) -> None:
    before = time.time()
    store.publish("BTCUSDT", {"state": "ACTIVE", "position": Decimal("0.0010")}, ttl_s=5)
    status = store.read("BTCUSDT")
    assert status is not None
    assert (status["state"], status["position"]) == (
        "ACTIVE",
        "0.001",
    )  # the one wire form: no trailing zeros
    assert before <= status["heartbeat_ts"] <= time.time()


def test_read_all_returns_every_live_symbol_and_drops_expired_ones(store: StatusStore) -> None:
    store.publish("BTCUSDT", {"state": "ACTIVE"}, ttl_s=5)
    store.publish("ETHUSDT", {"state": "HALTED"}, ttl_s=5)
    store.publish("SOLUSDT", {"state": "PAUSED"}, ttl_s=0.05)
    wait_for(lambda: store.read("SOLUSDT") is None, 5, "SOLUSDT's status to expire")
    statuses = store.read_all() or {}
    assert {s: v["state"] for s, v in statuses.items()} == {
        "BTCUSDT": "ACTIVE",
        "ETHUSDT": "HALTED",
    }
    assert store.read("SOLUSDT") is None


def test_a_newer_publish_replaces_the_status_and_remove_forgets_it(store: StatusStore) -> None:
    store.publish("BTCUSDT", {"state": "ACTIVE"}, ttl_s=5)
    store.publish("BTCUSDT", {"state": "HALTED"}, ttl_s=5)
    status = store.read("BTCUSDT")
    assert status is not None
    assert status == (store.read_all() or {})["BTCUSDT"]
    assert status["state"] == "HALTED"
    store.remove("BTCUSDT")
    assert store.read("BTCUSDT") is None
    assert store.read_all() == {}


def test_a_value_json_cannot_carry_is_refused(store: StatusStore) -> None:
    with pytest.raises(TypeError):
        store.publish("BTCUSDT", {"when": object()}, ttl_s=5)


def test_heartbeats_record_the_last_beat_of_each_process(store: StatusStore) -> None:
    before = time.time()
    store.heartbeat("supervisor")
    store.heartbeat("worker-BTCUSDT")
    beats = store.heartbeats()
    assert beats is not None
    assert set(beats) == {"supervisor", "worker-BTCUSDT"}
    assert all(before <= ts <= time.time() for ts in beats.values())  # stamped when beaten


def test_kill_flag_set_read_and_clear(store: StatusStore) -> None:
    assert store.kill_flag() is None
    store.set_kill_flag("MANUAL", "ops@tradex")
    flag = store.kill_flag()
    assert flag is not None
    assert (flag["reason"], flag["actor"]) == ("MANUAL", "ops@tradex")
    store.clear_kill_flag()
    assert store.kill_flag() is None


def test_prefixes_isolate_a_shadow_instance_from_production(redis_url: str, prefix: str) -> None:
    production = StatusStore(redis_url, prefix)
    shadow = StatusStore(redis_url, f"{prefix}shadow:")
    production.set_kill_flag("MANUAL", "ops")
    production.publish("BTCUSDT", {"state": "HALTED"}, ttl_s=5)
    production.heartbeat("supervisor")
    assert (shadow.kill_flag(), shadow.read_all(), shadow.heartbeats()) == (None, {}, {})
    production.close()
    shadow.close()


def test_a_heartbeat_says_when_redis_did_not_know_it_so_an_emptied_redis_is_refilled(
    redis_url: str, store: StatusStore, prefix: str
) -> None:
    assert store.heartbeat("supervisor") is Beat.NEW
    assert store.heartbeat("supervisor") is Beat.KNOWN
    client = redis.Redis.from_url(redis_url)
    client.delete(f"{prefix}heartbeats")  # what a Redis restarted empty looks like
    client.close()

    assert store.heartbeat("supervisor") is Beat.NEW


def test_a_dead_redis_never_raises_writes_say_false_and_reads_say_unknown() -> None:
    dead = StatusStore(f"redis://127.0.0.1:{stack.free_port()}/0", "mmsvc-test:dead:")

    writes = (
        dead.publish("BTCUSDT", {"state": "ACTIVE"}, ttl_s=5),
        dead.remove("BTCUSDT"),
        dead.set_kill_flag("MANUAL", "ops"),
        dead.clear_kill_flag(),
    )
    reads = (dead.read("BTCUSDT"), dead.read_all(), dead.heartbeats(), dead.kill_flag())

    assert writes == (False, False, False, False)
    assert reads == (None, None, None, None)
    assert dead.heartbeat("supervisor") is Beat.UNREACHABLE
    with pytest.raises(redis.RedisError):
        dead.ping()  # the readiness probe wants the failure itself
    dead.close()


def test_the_publisher_writes_the_newest_status_off_the_callers_thread(store: StatusStore) -> None:
    publisher = StatusPublisher(store)
    for state in ("PAUSED", "ACTIVE", "HALTED"):
        publisher.publish("BTCUSDT", {"state": state}, ttl_s=5)

    wait_for(lambda: (store.read("BTCUSDT") or {}).get("state") == "HALTED", 5, "the newest status")


def redis_up(process: str) -> float | None:
    return metrics.local_registry().get_sample_value("mm_redis_up", {"process": process})


def test_mm_redis_up_says_per_process_whether_redis_answers(redis_url: str, prefix: str) -> None:
    """D25: the gauge of a named store is 1 once Redis answered it, 0 once a call failed."""
    tag = uuid.uuid4().hex[:8]
    live = StatusStore(redis_url, prefix, process=f"live-{tag}")
    dead = StatusStore(f"redis://127.0.0.1:{stack.free_port()}/0", prefix, process=f"dead-{tag}")
    assert redis_up(f"live-{tag}") is None  # nothing known before the first call

    live.heartbeat("supervisor")
    dead.heartbeat("supervisor")

    assert redis_up(f"live-{tag}") == 1
    assert redis_up(f"dead-{tag}") == 0
    live.close()
    dead.close()


def test_the_breaker_reports_down_once_and_up_again_when_redis_answers() -> None:
    seen: list[bool] = []
    breaker = _Breaker(seen.append)

    def failing() -> None:
        raise redis.ConnectionError("refused")

    breaker.call("heartbeat", failing)
    breaker.call("heartbeat", failing)  # within the pause: not even tried
    assert seen == [False]
    wait_for(lambda: breaker.call("heartbeat", lambda: True)[0], 5, "the pause over")
    breaker.call("heartbeat", lambda: True)
    assert seen == [False, True]
