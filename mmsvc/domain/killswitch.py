"""Kill-switch triggers measured over time: reject storms, lag, timeouts, stale episodes."""

from __future__ import annotations

from collections import OrderedDict, deque

from mmsvc.domain.model import KillDecision, RiskTrigger

_REMEMBERED_REJECTS = 4_096


class RejectStorm:
    """Counts rejects in a sliding window; a client_order_id counts once (ARCHITECTURE D10)."""

    __slots__ = ("_count", "_seen", "_window", "_window_ms")

    def __init__(self, count: int, window_ms: int) -> None:
        self._count = count
        self._window_ms = window_ms
        self._window: deque[int] = deque()
        # Bounded memory of ids already counted: a 4xx and its REJECTED event may
        # arrive far apart, so this outlives the window.
        self._seen: OrderedDict[str, None] = OrderedDict()

    def record(self, client_order_id: str, now_ms: int) -> KillDecision | None:
        """Count one reject; return REJECT_STORM once count rejects fall within the window."""
        if client_order_id in self._seen:
            return self._check(now_ms)
        self._seen[client_order_id] = None
        if len(self._seen) > _REMEMBERED_REJECTS:
            self._seen.popitem(last=False)
        self._window.append(now_ms)
        return self._check(now_ms)

    def in_window(self, now_ms: int) -> int:
        """How many distinct rejects fall within the window ending at now_ms."""
        self._expire(now_ms)
        return len(self._window)

    def clear(self) -> None:
        """Forget the window (a reset clears it: D9); ids already counted stay counted."""
        self._window.clear()

    def _check(self, now_ms: int) -> KillDecision | None:
        if self.in_window(now_ms) < self._count:
            return None
        detail = f"{len(self._window)} rejects within {self._window_ms} ms"
        return KillDecision(RiskTrigger.REJECT_STORM, detail)

    def _expire(self, now_ms: int) -> None:
        horizon = now_ms - self._window_ms
        while self._window and self._window[0] <= horizon:
            self._window.popleft()


def response_timeout(elapsed_ms: int, budget_ms: int, what: str) -> KillDecision | None:
    """RESPONSE_TIMEOUT when an Order Service request took longer than its budget."""
    if elapsed_ms > budget_ms:
        detail = f"{what}: no answer within {budget_ms} ms ({elapsed_ms} ms)"
        return KillDecision(RiskTrigger.RESPONSE_TIMEOUT, detail)
    return None


class StaleEpisodes:
    """Turns per-tick staleness into one STALE_DATA event per episode (ARCHITECTURE D7)."""

    __slots__ = ("_stale",)

    def __init__(self) -> None:
        self._stale = False

    @property
    def stale(self) -> bool:
        """True while an episode is under way."""
        return self._stale

    def observe(self, reason: str | None) -> KillDecision | None:
        """Return STALE_DATA when an episode starts; None while it lasts or once data is fresh."""
        started = reason is not None and not self._stale
        self._stale = reason is not None
        if started:
            return KillDecision(RiskTrigger.STALE_DATA, reason or "")
        return None
