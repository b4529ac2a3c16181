"""A dependency in doubt: pull the quotes, stay up, retry with backoff (ARCHITECTURE D25).

The one home of "dependency down, pull quotes, retry" in a worker. A call
that meets an unreachable PostgreSQL (refused, reset, shutting down, starting
up) is not a bug: the worker pulls its quotes once (cancel until flat while
the Order Service answers), places nothing while the outage lasts, and tries
its recovery with growing pauses until it succeeds; then it carries on in the
state PostgreSQL records (D25, D29). supervisord restarts are for bugs, so any
other error still propagates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from mmsvc.adapters.db.engine import database_down

log = logging.getLogger("mmsvc.worker.outage")

RETRY_FIRST_S = 0.1
RETRY_MAX_S = 2.0


class Outage:
    """One dependency's outage: quotes pulled once, recovery retried with backoff."""

    def __init__(
        self,
        dependency: str,
        symbol: str,
        *,
        pull: Callable[[], None],
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.dependency, self.symbol = dependency, symbol
        self._pull = pull
        self._clock = clock
        self._delay = RETRY_FIRST_S
        self._retry_at = 0.0
        self.active = False

    def down(self, exc: BaseException) -> None:
        """The dependency did not answer: pull the quotes (once per outage), retry later."""
        if not self.active:
            self.active = True
            self._delay = RETRY_FIRST_S
            log.error(
                f"{self.dependency} unreachable; quotes pulled, retrying with backoff",
                extra={"symbol": self.symbol, "detail": str(exc).splitlines()[0][:200]},
            )
            self._pull()
        self._retry_at = self._clock() + self._delay
        self._delay = min(self._delay * 2, RETRY_MAX_S)

    @contextmanager
    def guard(self) -> Iterator[None]:
        """Run a block; an unreachable database ends it and starts (or extends) the outage."""
        try:
            yield
        except Exception as exc:
            if not database_down(exc):
                raise
            self.down(exc)

    def retry(self, recover: Callable[[], None]) -> bool:
        """Run ``recover`` once the backoff has passed; True when the outage is over."""
        if not self.active or self._clock() < self._retry_at:
            return False
        with self.guard():
            recover()
            self.active = False
            log.warning(f"{self.dependency} answers again; resuming", extra={"symbol": self.symbol})
            return True
        return False
