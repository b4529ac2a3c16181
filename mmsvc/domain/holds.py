"""Holds on new places while our book is known to be behind the venue's (D23).

After a fill, the book message of the move that caused it may still be on its
way: places wait (at most ``fill_wait_ms``) for a book message stamped at or
after the fill. After a POST_ONLY_WOULD_CROSS reject, the venue told us our
book is behind on that side: places on that side wait for the next book
message. Cancels are never held.
"""

from __future__ import annotations

from collections.abc import Sequence

from mmsvc.domain.model import NewOrder, Side

FILL_BOOK_WAIT_MS = 1000


class PlaceHolds:
    """Which sides may place now, given the last fill, the last cross and the book."""

    __slots__ = ("_crossed", "_fill_due_ts_ms", "_fill_until_ms", "_wait_ms")

    def __init__(self, fill_wait_ms: int = FILL_BOOK_WAIT_MS) -> None:
        self._wait_ms = fill_wait_ms
        self._fill_due_ts_ms = 0
        self._fill_until_ms = 0
        self._crossed: set[Side] = set()

    def on_book(self) -> None:
        """A book message was applied: a cross hold ends with it."""
        self._crossed.clear()

    def after_fill(self, fill_ts_ms: int, now_ms: int) -> None:
        """Hold places until a book message stamped at or after the fill, or the wait ends."""
        self._fill_due_ts_ms = max(self._fill_due_ts_ms, fill_ts_ms)
        self._fill_until_ms = now_ms + self._wait_ms

    def after_cross(self, side: Side) -> None:
        """Hold places on ``side`` until the next book message (D23)."""
        self._crossed.add(side)

    def held_sides(self, book_ts_ms: int | None, now_ms: int) -> frozenset[Side]:
        """The sides on which no order may be placed now."""
        if now_ms < self._fill_until_ms and (
            book_ts_ms is None or book_ts_ms < self._fill_due_ts_ms
        ):
            return frozenset(Side)
        return frozenset(self._crossed)

    def allowed(
        self, places: Sequence[NewOrder], book_ts_ms: int | None, now_ms: int
    ) -> tuple[tuple[NewOrder, ...], bool]:
        """The places that may go now, and whether any was held back."""
        held = self.held_sides(book_ts_ms, now_ms)
        if not held:
            return tuple(places), False
        kept = tuple(p for p in places if p.side not in held)
        return kept, len(kept) != len(places)
