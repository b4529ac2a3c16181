"""What the kill switch and the command handler need from the outside, as Protocols.

The worker's store, its order execution and its process loop each satisfy one
of these; unit tests hand in small stubs instead (STYLE: a pure core, adapters
at the edge). Nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, Protocol

from mmsvc.domain.model import KillDecision, MMConfig, RiskTrigger, SymbolState


class StateStore(Protocol):
    """A symbol's state in durable storage; each call is one committed transaction.

    Changes other than ``halt`` go through the guarded transition and raise
    ``state.TransitionRefusedError`` when the stored row does not allow them (D23, D30).
    """

    def halt(
        self, kill: KillDecision, *, actor: str, position: Decimal, pnl: Decimal, publish: bool
    ) -> bool:
        """HALTED with its trigger and its risk event; never refused (D30)."""
        ...

    def stale_episode(self, detail: str, position: Decimal, pnl: Decimal) -> None:
        """One STALE_DATA risk event (D7)."""
        ...

    def enable(self, *, actor: str) -> MMConfig | None:
        """enabled=true and ACTIVE, under the guard; the refreshed config."""
        ...

    def resume(self, *, actor: str) -> None:
        """ACTIVE, under the guard."""
        ...

    def pause(self, *, reason: str, actor: str) -> None:
        """PAUSED (refused while HALTED)."""
        ...

    def reset(self, *, actor: str) -> None:
        """HALTED -> PAUSED, the only way out of HALTED (D9)."""
        ...

    def global_kill_active(self) -> bool:
        """The global kill flag as stored (D3)."""
        ...

    def load_config(self) -> MMConfig | None:
        """The symbol's config row, or None when it is gone."""
        ...

    def unsettled_order_ids(self) -> Sequence[object]:
        """Orders open or awaiting their final engine event (D31)."""
        ...

    def recorded_state(self) -> tuple[SymbolState, list[RiskTrigger]]:
        """The state and trigger the symbol's row holds now."""
        ...


class Flattener(Protocol):
    """Pulls every order of the symbol until the venue lists none (D7, D22)."""

    def start_flatten(self) -> None:
        """Start (or keep going) canceling until flat."""
        ...


class WorkerLoop(Protocol):
    """What a command may ask of the worker process itself."""

    def market_moved(self, force: bool = False) -> None:
        """Decide again now."""
        ...

    def publish_status(self) -> None:
        """Write the live status at once."""
        ...

    def stop(self, code: int = 0) -> None:
        """Leave the loop and exit with ``code``."""
        ...

    def live_status(self) -> dict[str, Any]:
        """The live status as JSON values."""
        ...


class DeadLetterHold(Protocol):
    """Whether a dead letter of the symbol holds its quotes (D24, D31)."""

    def holding(self) -> bool:
        """True while an uncleared dead letter of the symbol exists (read now)."""
        ...
