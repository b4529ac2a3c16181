"""The MAX_ORDERS_PER_SECOND token bucket: paces placements, never a cancel."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mmsvc.domain.ratelimit import TokenBucket


def test_a_full_bucket_admits_a_burst_then_defers_the_rest() -> None:
    bucket = TokenBucket(10, now_ms=0)
    now, later = bucket.admit(list(range(12)), now_ms=0)
    assert now == list(range(10))
    assert later == [10, 11]


def test_tokens_refill_at_the_rate() -> None:
    bucket = TokenBucket(10, now_ms=0)
    bucket.admit(list(range(10)), now_ms=0)
    assert not bucket.try_acquire(now_ms=99)
    assert bucket.ms_until_available(now_ms=99) == 1
    assert bucket.try_acquire(now_ms=100)
    assert bucket.available(now_ms=1_100) == 10  # never above the burst


def test_cancels_go_at_once_with_an_empty_bucket_and_take_no_token() -> None:
    bucket = TokenBucket(1, now_ms=0)
    assert bucket.try_acquire(now_ms=0)
    assert bucket.admit_cancels(["c1", "c2", "c3"]) == ["c1", "c2", "c3"]
    assert bucket.ms_until_available(now_ms=0) == 1_000
    assert bucket.available(now_ms=1_000) == 1


@given(
    st.integers(1, 50),
    st.lists(st.tuples(st.integers(0, 300), st.integers(0, 20), st.integers(0, 20)), max_size=50),
)
def test_never_more_than_burst_plus_rate_times_elapsed(
    rate: int, steps: list[tuple[int, int, int]]
) -> None:
    bucket = TokenBucket(rate, now_ms=0)
    now, placed = 0, 0
    for dt, places, cancels in steps:
        now += dt
        assert len(bucket.admit_cancels(list(range(cancels)))) == cancels
        admitted, deferred = bucket.admit(list(range(places)), now)
        assert len(admitted) + len(deferred) == places
        placed += len(admitted)
        assert placed <= rate + rate * now // 1_000
