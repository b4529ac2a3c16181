"""Realized volatility of the mid and the spread multiplier it implies (ARCHITECTURE D13).

Statistics, not money: floats are fine here; only the multiplier leaves as a Decimal.
"""

from __future__ import annotations

import math
from decimal import Decimal

FAST_HALF_LIFE_MS = 60_000  # ~1 minute: reacts to a burst
SLOW_HALF_LIFE_MS = 900_000  # ~15 minutes: the regime the burst is compared with
MIN_RETURNS = 20  # below this the ratio is noise, so the multiplier stays 1
MAX_MULTIPLIER = 3.0
_MULTIPLIER_STEP = Decimal("0.0001")
_ONE = Decimal(1)


class VolatilityEstimator:
    """EWMA variance rates of mid log returns, fast and slow, over irregular sampling."""

    __slots__ = ("_fast", "_last_mid", "_last_ms", "_multiplier", "_returns", "_slow")

    def __init__(self) -> None:
        self._fast = 0.0
        self._slow = 0.0
        self._returns = 0
        self._last_mid: float | None = None
        self._last_ms = 0
        self._multiplier = _ONE

    @property
    def returns_seen(self) -> int:
        """How many returns have been folded in."""
        return self._returns

    @property
    def multiplier(self) -> Decimal:
        """clamp(sigma_fast / sigma_slow, 1, 3), or exactly 1 until MIN_RETURNS (D13)."""
        return self._multiplier

    def observe(self, mid: Decimal, now_ms: int) -> None:
        """Fold in the mid seen at now_ms; same-millisecond samples merge into the next."""
        price = float(mid)
        if price <= 0.0:
            return
        last = self._last_mid
        if last is None:
            self._last_mid, self._last_ms = price, now_ms
            return
        dt = now_ms - self._last_ms
        if dt <= 0:
            return
        r = math.log(price / last)
        # Variance per millisecond, so that a burst of updates does not read as volatility.
        rate = r * r / dt
        self._fast += _weight(dt, FAST_HALF_LIFE_MS) * (rate - self._fast)
        self._slow += _weight(dt, SLOW_HALF_LIFE_MS) * (rate - self._slow)
        self._last_mid, self._last_ms = price, now_ms
        self._returns += 1
        self._multiplier = self._compute_multiplier()

    def _compute_multiplier(self) -> Decimal:
        if self._returns < MIN_RETURNS or self._slow <= 0.0:
            return _ONE
        ratio = math.sqrt(self._fast / self._slow)
        clamped = min(max(ratio, 1.0), MAX_MULTIPLIER)
        # Four decimals keep spread arithmetic short and exact.
        return Decimal(round(clamped * 10_000)) * _MULTIPLIER_STEP


def _weight(dt_ms: int, half_life_ms: int) -> float:
    """The EWMA weight of a sample that covers dt_ms."""
    return 1.0 - math.exp2(-dt_ms / half_life_ms)
