"""A token bucket for MAX_ORDERS_PER_SECOND that paces new orders and never a cancel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")
_MILLI = 1_000


class TokenBucket:
    """Refills rate tokens a second up to burst; integer milli-tokens, so no float drift."""

    __slots__ = ("_capacity", "_last_ms", "_rate", "_tokens")

    def __init__(self, rate_per_second: int, now_ms: int, burst: int | None = None) -> None:
        if rate_per_second <= 0:
            raise ValueError("rate_per_second must be > 0")
        self._rate = rate_per_second  # milli-tokens per millisecond, conveniently
        self._capacity = (burst if burst is not None else rate_per_second) * _MILLI
        self._tokens = self._capacity
        self._last_ms = now_ms

    def available(self, now_ms: int) -> int:
        """Whole tokens available at now_ms."""
        self._refill(now_ms)
        return self._tokens // _MILLI

    def try_acquire(self, now_ms: int, count: int = 1) -> bool:
        """Take count tokens if all are there; otherwise take none."""
        self._refill(now_ms)
        if self._tokens < count * _MILLI:
            return False
        self._tokens -= count * _MILLI
        return True

    def admit(self, places: Sequence[T], now_ms: int) -> tuple[list[T], list[T]]:
        """Split placements into those that may go now (in order) and those to defer."""
        allowed = min(len(places), self.available(now_ms))
        self._tokens -= allowed * _MILLI
        return list(places[:allowed]), list(places[allowed:])

    def ms_until_available(self, now_ms: int, count: int = 1) -> int:
        """Milliseconds until count tokens will be there (0 if they already are)."""
        self._refill(now_ms)
        missing = count * _MILLI - self._tokens
        return 0 if missing <= 0 else -(-missing // self._rate)

    @staticmethod
    def admit_cancels(cancels: Sequence[T]) -> list[T]:
        """Cancels always go at once and take no token: pulling risk is never paced."""
        return list(cancels)

    def _refill(self, now_ms: int) -> None:
        elapsed = now_ms - self._last_ms
        if elapsed > 0:
            self._tokens = min(self._capacity, self._tokens + elapsed * self._rate)
            self._last_ms = now_ms
