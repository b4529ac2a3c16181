"""The simulator's own pauses, which the service reads, rightly, as a slow venue.

The service halts a symbol when a place is not answered within 50 ms
(RESPONSE_TIMEOUT). The simulator is one Python process answering every worker,
so a pause of its own delays every answer at once: the quiet soak of issue 12
saw two symbols halted 73 ms apart, by answers of 51 and 54 ms. So the simulator
measures itself: each garbage collection (``gc.callbacks``) of ``LOGGED_PAUSE_MS``
or more, and each answer slower than ``SLOW_ANSWER_MS``, is logged as a warning
with its duration, the answer's split into the venue's work and the thread's own
CPU time. Measured with it (issue 12's note, session 9): no collection reached
5 ms; the slow answers were time spent waiting for a CPU, not working.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

# A collection this long is worth a line; the service's whole budget is 50 ms.
LOGGED_PAUSE_MS = 5.0
SLOW_ANSWER_MS = 20.0


@dataclass
class GcPauses:
    """Times every collection and logs the long ones."""

    _began: float = 0.0

    def install(self) -> None:
        gc.callbacks.append(self._on_gc)

    def close(self) -> None:
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        took_ms = (time.perf_counter() - self._began) * 1000.0
        if took_ms >= LOGGED_PAUSE_MS:
            log.warning(
                "gc pause: generation %d took %.1f ms (%d collected)",
                int(info.get("generation", 0)),
                took_ms,
                int(info.get("collected", 0)),
            )


def answered(method: str, path: str, received_ns: int, *, app_ns: int = 0, cpu_ns: int = 0) -> None:
    """Log an answer slower than SLOW_ANSWER_MS, from its receipt to its last byte sent.

    Split so the line says where the time went: ``app`` (the venue's work, its lock
    included) and this thread's own CPU time; wall time far above the CPU time is
    time spent waiting (the venue's lock, the GIL, or a CPU the box did not give).
    """
    took_ms = (time.time_ns() - received_ns) / 1e6
    if took_ms >= SLOW_ANSWER_MS:
        log.warning(
            "slow answer: %s %s took %.1f ms (app %.1f ms, thread cpu %.1f ms)",
            method,
            path,
            took_ms,
            app_ns / 1e6,
            cpu_ns / 1e6,
        )
