"""The simulator's own pauses, which the service reads, rightly, as a slow venue.

The service halts a symbol when a place is not answered within 50 ms
(RESPONSE_TIMEOUT). The simulator is one Python process answering every worker,
so a pause of its own delays every answer at once: the quiet soak of issue 12
saw two symbols halted 73 ms apart, by answers of 51 and 54 ms, with nothing
else to explain them. The likeliest pause is a full garbage collection: the
simulator keeps every order and fill for its log, so each collection of the
oldest generation walks a heap that only grows.

So the simulator measures itself: each collection (``gc.callbacks``) and each
answer slower than ``SLOW_ANSWER_MS`` is logged as a warning with its duration.
And it keeps
full collections short: what has lived through a freeze interval is moved out
of the collector's sight (``gc.freeze``), so a full collection walks only what
was made since. The price is that a reference cycle which became garbage
before a freeze is never freed: a few kilobytes over a day of a dev process.
``EXCHANGE_GC_FREEZE_S=0`` turns the freezing off, to compare.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger(__name__)

# A collection this long is worth a line; the service's whole budget is 50 ms.
LOGGED_PAUSE_MS = 5.0
SLOW_ANSWER_MS = 20.0
FREEZE_EVERY_S = 10.0


def freeze_interval_s() -> float:
    """EXCHANGE_GC_FREEZE_S (seconds, 0 = never freeze); FREEZE_EVERY_S by default."""
    raw = os.environ.get("EXCHANGE_GC_FREEZE_S", "").strip()
    if not raw:
        return FREEZE_EVERY_S
    try:
        value = float(raw)
    except ValueError:
        raise SystemExit(f"mmsvc-exchange: EXCHANGE_GC_FREEZE_S={raw!r} is not a number") from None
    if value < 0:
        raise SystemExit(f"mmsvc-exchange: EXCHANGE_GC_FREEZE_S={raw!r} is negative")
    return value


@dataclass
class GcPauses:
    """Times every collection; logs the long ones; freezes survivors every ``freeze_s``."""

    freeze_s: float = FREEZE_EVERY_S
    counts: Counter[str] = field(default_factory=Counter)
    longest_ms: dict[int, float] = field(default_factory=dict)
    _began: float = 0.0
    _stop: threading.Event = field(default_factory=threading.Event)

    def install(self) -> None:
        gc.callbacks.append(self._on_gc)
        if self.freeze_s > 0:
            gc.freeze()  # what start-up built (config, books, clients) is never garbage
            threading.Thread(target=self._freezing, name="gc-freeze", daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        if self._on_gc in gc.callbacks:
            gc.callbacks.remove(self._on_gc)

    def _freezing(self) -> None:
        while not self._stop.wait(self.freeze_s):
            gc.freeze()
            self.counts["freezes"] += 1

    def _on_gc(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
            return
        took_ms = (time.perf_counter() - self._began) * 1000.0
        generation = int(info.get("generation", 0))
        self.counts[f"gen{generation}"] += 1
        self.longest_ms[generation] = max(self.longest_ms.get(generation, 0.0), took_ms)
        if took_ms >= LOGGED_PAUSE_MS:
            log.warning(
                "gc pause: generation %d took %.1f ms (%d collected, %d frozen)",
                generation,
                took_ms,
                int(info.get("collected", 0)),
                gc.get_freeze_count(),
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
