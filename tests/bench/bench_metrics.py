"""What the metric helpers cost a worker in multiprocess mode (each write goes to an mmap file).

Measured in a child process whose metrics write under a temporary
PROMETHEUS_MULTIPROC_DIR, so this process keeps its own mode. Figures are
nanoseconds per call, best of several rounds: ``observe_worker`` with nothing
changed (the cache skips the write), with one value changed (one file write),
a histogram observation (two writes), a labelled counter and a labelled gauge.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile

_CHILD = r"""
import json, sys, time
from mmsvc.adapters import metrics as m
m.setup_multiprocess(sys.argv[1])
N, ROUNDS = 50_000, 5

def best(f):
    f(0)
    out = float("inf")
    for _ in range(ROUNDS):
        s = time.perf_counter_ns()
        for i in range(N):
            f(i)
        out = min(out, (time.perf_counter_ns() - s) / N)
    return round(out, 1)

print(json.dumps({
    "observe_worker_unchanged_ns": best(lambda i: m.observe_worker("BTCUSDT", open_orders=3)),
    "observe_worker_one_change_ns": best(lambda i: m.observe_worker("BTCUSDT", open_orders=i)),
    "observe_quote_latency_ns": best(lambda i: m.observe_quote_latency(4e-5)),
    "order_rejected_ns": best(lambda i: m.order_rejected("BTCUSDT")),
    "set_kafka_lag_ns": best(lambda i: m.set_kafka_lag("md.trades.v1", i * 1e-3)),
}))
"""


def run() -> dict[str, object]:
    """Measure in a child process and return its figures."""
    with tempfile.TemporaryDirectory() as directory:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, directory],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        )
    figures: dict[str, object] = json.loads(done.stdout)
    return figures
