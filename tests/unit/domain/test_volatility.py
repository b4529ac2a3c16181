"""The volatility multiplier: 1 until enough returns, widens on bursts, clamped to [1, 3]."""

from __future__ import annotations

import math
import random

from hypothesis import given
from hypothesis import strategies as st

from mmsvc.domain.volatility import MIN_RETURNS, VolatilityEstimator
from tests.unit.domain.builders import D


def feed(est: VolatilityEstimator, mids: list[float], start_ms: int, step_ms: int) -> int:
    now = start_ms
    for mid in mids:
        est.observe(D(repr(mid)), now)
        now += step_ms
    return now


def walk(n: int, sigma: float, seed: int, start: float = 100.0) -> list[float]:
    rng = random.Random(seed)
    mids, price = [], start
    for _ in range(n):
        price *= math.exp(rng.gauss(0.0, sigma))
        mids.append(round(price, 4))
    return mids


def test_multiplier_is_one_until_enough_returns() -> None:
    est = VolatilityEstimator()
    feed(est, [100.0, 101.0, 99.0, 102.0, 98.0] * 3, 0, 100)
    assert est.returns_seen < MIN_RETURNS
    assert est.multiplier == D(1)


def test_burst_of_volatility_after_a_calm_regime_widens_up_to_three() -> None:
    est = VolatilityEstimator()
    now = feed(est, walk(3_000, 0.0001, seed=1), 0, 300)  # 15 calm minutes
    assert est.multiplier < D("1.5")
    feed(est, walk(200, 0.003, seed=2, start=100.0), now, 300)  # one wild minute
    assert est.multiplier == D(3)


def test_calm_after_a_storm_never_narrows_below_one() -> None:
    est = VolatilityEstimator()
    now = feed(est, walk(3_000, 0.003, seed=3), 0, 300)
    feed(est, walk(600, 0.00001, seed=4), now, 300)
    assert est.multiplier == D(1)


def test_same_millisecond_updates_merge_into_the_next_return() -> None:
    est = VolatilityEstimator()
    est.observe(D(100), 0)
    est.observe(D(101), 0)
    assert est.returns_seen == 0
    est.observe(D(102), 10)
    assert est.returns_seen == 1


@given(st.lists(st.floats(1.0, 1e6), min_size=1, max_size=80), st.integers(1, 5_000))
def test_multiplier_stays_between_one_and_three_with_four_decimals(
    mids: list[float], step_ms: int
) -> None:
    est = VolatilityEstimator()
    feed(est, mids, 0, step_ms)
    assert D(1) <= est.multiplier <= D(3)
    assert est.multiplier == est.multiplier.quantize(D("0.0001"))
