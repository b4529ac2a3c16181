"""Start-up that waits for PostgreSQL instead of exiting (ARCHITECTURE D25, D27).

A process that cannot read its configs, its lease or its state at start
used to exit, and supervisord (or the supervisor's pool) restarted it: a
crash loop for an outage that is not a bug. Instead each start-up step that
needs PostgreSQL runs through :func:`until_database_answers`: while the
database is unreachable the process stays up, logs once per back-off step
(growing pauses, so a long outage costs a few lines, not thousands) and
keeps doing what it must do meanwhile (a worker keeps telling its supervisor
it is alive, quoting nothing); once the database answers it carries on. Any
other error still propagates: supervisord restarts are for bugs.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

from mmsvc.adapters.db.engine import database_down

log = logging.getLogger("mmsvc.db_wait")

T = TypeVar("T")

WAIT_FIRST_S = 0.5
WAIT_MAX_S = 8.0


class StoppedWaitingError(Exception):
    """The process was told to stop (SIGTERM, lost supervisor) while it waited."""


def until_database_answers(
    step: Callable[[], T],
    *,
    what: str,
    idle: Callable[[float], bool],
    symbol: str | None = None,
) -> T:
    """Run ``step`` until it does not meet an unreachable PostgreSQL, and return its value.

    ``idle(seconds)`` spends a back-off pause (serving what the process must
    serve meanwhile) and returns False when the process was told to stop,
    which raises StoppedWaitingError.
    """
    delay = WAIT_FIRST_S
    while True:
        try:
            return step()
        except Exception as exc:
            if not database_down(exc):
                raise
            log.warning(
                "waiting for PostgreSQL",
                extra={
                    "symbol": symbol,
                    "step": what,
                    "retry_in_s": delay,
                    "detail": str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__,
                },
            )
        if not idle(delay):
            raise StoppedWaitingError(what)
        delay = min(delay * 2, WAIT_MAX_S)


def sleeping_while(running: Callable[[], bool]) -> Callable[[float], bool]:
    """An ``idle`` that only sleeps, in short slices so a stop is noticed at once."""

    def idle(seconds: float) -> bool:
        ends = time.monotonic() + seconds
        while running() and time.monotonic() < ends:
            time.sleep(min(0.1, max(0.0, ends - time.monotonic())))
        return running()

    return idle
