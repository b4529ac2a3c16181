"""Silence is judged only on time the judge itself was running (D17, D27, D28).

The supervisor kills a worker it has not heard for WORKER_SILENT_S, and a worker
exits when it has not heard its supervisor for SUPERVISOR_SILENT_S. Both measure
on the monotonic clock, which keeps running while the judge does not: a host
stopped and resumed (SIGSTOP, a paused VM, a cut-off host), or a loop blocked for
seconds, wakes to find every peer "silent" for as long as it was stopped itself,
though the peers' messages are waiting in its sockets. The chaos run found it: a
host resumed after a 10 s SIGSTOP killed its own workers on sight, and they came
back PAUSED (a restart, D29) instead of carrying on.

A gap in the judge's own checks is therefore no evidence: after one, the peers
get a fresh silence window from now. A peer that really is gone is still judged
one window later.
"""

from __future__ import annotations

__all__ = ["LoopGap"]


class LoopGap:
    """Notices that the checks of a silence rule stopped running for longer than ``gap_s``."""

    __slots__ = ("_checked_at", "_gap_s", "last_s")

    def __init__(self, gap_s: float) -> None:
        if gap_s <= 0:
            raise ValueError("gap_s must be positive")
        self._gap_s = gap_s
        self._checked_at: float | None = None
        # Seconds between the last two checks: what a stall's log line reports.
        self.last_s = 0.0

    def stalled(self, now: float) -> bool:
        """Record a check at monotonic ``now``; True if the previous one was over ``gap_s`` ago."""
        previous, self._checked_at = self._checked_at, now
        self.last_s = 0.0 if previous is None else now - previous
        return self.last_s > self._gap_s
