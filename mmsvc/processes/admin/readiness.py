"""Readiness probes run in the background, so /readyz never waits on a dead peer (D25).

Each dependency (PostgreSQL, Redis, Kafka, the supervisor) has a daemon thread
in every admin process that probes it about once a second and keeps the last
answer. A request reads those answers and probes nothing itself, so it returns
at once even while a peer hangs; a probe that has not come back for
``STALE_AFTER_S`` counts as down ("no answer for N s"), so a hung peer reads
as down rather than as its last good answer.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from mmsvc.processes.admin.bodies import Body

log = logging.getLogger(__name__)

PROBE_INTERVAL_S = 1.0
STALE_AFTER_S = 5.0

Check = Callable[[], None]  # raises when the dependency does not answer


class CheckResult(Body):
    """One dependency's last answer in /readyz: ok, or the error; how long ago, how long it took."""

    ok: bool
    error: str | None
    latency_ms: float | None  # null: no answer yet, or none for too long
    age_s: float | None  # seconds since the cached answer; null: none yet


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe's answer: ok, or the error; when it finished (monotonic) and how long it took."""

    ok: bool
    error: str | None
    latency_ms: float
    finished: float


def probe(check: Check) -> ProbeResult:
    """Run one check; any exception is the dependency being down, named in the error."""
    started = time.monotonic()
    error: str | None = None
    try:
        check()
    except Exception as exc:  # noqa: BLE001 - any failure makes the probe fail, and says which
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        error = f"{type(exc).__name__}: {first_line}"[:300]
    finished = time.monotonic()
    return ProbeResult(error is None, error, round((finished - started) * 1000, 3), finished)


class ProbeCache:
    """The last answer of each check, refreshed by one daemon thread per check."""

    def __init__(
        self,
        checks: Mapping[str, Check],
        interval_s: float = PROBE_INTERVAL_S,
        stale_after_s: float = STALE_AFTER_S,
    ) -> None:
        self._checks = dict(checks)
        self._interval_s = interval_s
        self._stale_after_s = stale_after_s
        self._results: dict[str, ProbeResult] = {}
        self._started = time.monotonic()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """One thread per check, so a hung dependency never delays the others' answers."""
        self._started = time.monotonic()
        for name, check in self._checks.items():
            thread = threading.Thread(
                target=self._run, args=(name, check), name=f"readyz-{name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout_s: float = 5.0) -> None:
        """End the threads after their current probe, before the adapters they use close."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout_s)

    def checks(self) -> dict[str, CheckResult]:
        """The last answer of every dependency, from cached answers only."""
        now = time.monotonic()
        return {name: self._view(self._results.get(name), now) for name in self._checks}

    def _run(self, name: str, check: Check) -> None:
        while not self._stop.is_set():
            self._results[name] = probe(check)  # one writer per key; readers see old or new
            self._stop.wait(self._interval_s)

    def _view(self, result: ProbeResult | None, now: float) -> CheckResult:
        since = now - (self._started if result is None else result.finished)
        if since > self._stale_after_s:
            error = f"no answer for {since:.1f}s"
            return CheckResult(ok=False, error=error, latency_ms=None, age_s=round(since, 3))
        if result is None:
            return CheckResult(ok=False, error="not probed yet", latency_ms=None, age_s=None)
        return CheckResult(
            ok=result.ok, error=result.error, latency_ms=result.latency_ms, age_s=round(since, 3)
        )
