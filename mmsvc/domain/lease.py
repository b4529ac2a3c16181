"""The worker's local deadline for its ownership lease (ARCHITECTURE D26, D32).

The lease's expiry is kept on PostgreSQL's clock; this is the worker's own,
conservative copy on its monotonic clock, so a worker that cannot reach
PostgreSQL stops placing before a new owner can take the symbol over. The
caller passes `time.monotonic()` readings; nothing here reads a clock.
"""

from __future__ import annotations


class LeaseDeadline:
    """No place after (request sent + lease_s - margin_s) of the last successful renewal."""

    __slots__ = ("_deadline", "_margin_s")

    def __init__(self, margin_s: float) -> None:
        if margin_s < 0:
            raise ValueError("margin_s must be >= 0")
        self._margin_s = margin_s
        self._deadline: float | None = None

    def renewed(self, sent_at: float, lease_s: float) -> None:
        """Record a take or renewal whose request left at monotonic `sent_at`.

        Counting from the moment the request was sent, not from its answer,
        keeps the local deadline before the server's expiry however long the
        round trip took.
        """
        if lease_s <= self._margin_s:
            raise ValueError(f"lease_s {lease_s} must exceed the margin {self._margin_s}")
        deadline = sent_at + lease_s - self._margin_s
        if self._deadline is None or deadline > self._deadline:
            self._deadline = deadline

    def lost(self) -> None:
        """The lease is gone (fenced, released): no place from now on until the next take."""
        self._deadline = None

    def allows_place(self, now: float) -> bool:
        """True while monotonic `now` is before the deadline of a held lease."""
        return self._deadline is not None and now < self._deadline

    def remaining(self, now: float) -> float:
        """Seconds left before the deadline (0 when none is held or it has passed)."""
        if self._deadline is None:
            return 0.0
        return max(0.0, self._deadline - now)


def owner_name(host: str, pid: int) -> str:
    """A lease owner: the host (``MMSVC_HOST_ID``) and the worker's pid."""
    return f"{host}/{pid}"


def owner_host(owner: str) -> str:
    """The host part of a lease owner (see :func:`owner_name`)."""
    host, sep, _ = owner.rpartition("/")
    return host if sep else owner


def moved_here(
    takeover: bool, previous_owner: str | None, host: str, *, handed_back: bool = False
) -> bool:
    """True when the symbol moved here within TAKEOVER_WINDOW: from another host, or
    handed back to the supervisor that handed it over (``handed_back``).

    D28, D29: only such a symbol carries on in its recorded state (an ACTIVE
    one quotes again). A lease last held on this same host otherwise means a
    restart of our own worker or supervisor, and any restart gives PAUSED (D3);
    a lease that ended longer ago (``takeover`` False) is a cold start.

    ``handed_back``: this host's supervisor stopped the symbol's worker because the
    group revoked its partition, and the group gave it back, with no process
    restarted in between (the supervisor says so when it starts the worker). The
    chaos run found a survivor whose consumer lost its whole assignment and got it
    back 4 s later; read as a restart, that paused seven symbols nobody touched.
    """
    if not takeover or previous_owner is None:
        return False
    return handed_back or owner_host(previous_owner) != host
