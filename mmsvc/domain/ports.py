"""The few things the trading core needs from the outside world, as Protocols."""

from __future__ import annotations

from typing import Protocol


class Clock(Protocol):
    """Epoch milliseconds, UTC; the only notion of time the core accepts."""

    def now_ms(self) -> int:
        """The current time in epoch milliseconds."""
        ...
