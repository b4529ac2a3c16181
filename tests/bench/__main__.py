"""Run every tests/bench/bench_*.py module's run() -> dict, print it, save bench-results/.

python -m tests.bench                      # every benchmark
python -m tests.bench quote                # only bench_quote.py
python -m tests.bench scale --symbols 10   # options after a name go to its run(options)
"""

from __future__ import annotations

import importlib
import json
import pkgutil
import sys
from pathlib import Path

import tests.bench

RESULTS_DIR = Path("bench-results")


def benchmark_names() -> list[str]:
    """The suffixes of every bench_*.py module beside this one, sorted."""
    return sorted(
        info.name.removeprefix("bench_")
        for info in pkgutil.iter_modules(tests.bench.__path__)
        if info.name.startswith("bench_")
    )


def parse(argv: list[str]) -> dict[str, list[str]]:
    """Benchmark names in order, each with the options that follow it (``--flag value``)."""
    chosen: dict[str, list[str]] = {}
    options: list[str] | None = None
    for arg in argv:
        waiting = options is not None and bool(options) and options[-1].startswith("--")
        waiting = waiting and options is not None and "=" not in options[-1]
        if arg.startswith("-") or waiting:
            if options is None:
                raise SystemExit(f"an option must follow a benchmark name: {arg}")
            options.append(arg)
        else:
            options = chosen[arg] = []
    return chosen


def main(argv: list[str]) -> int:
    """Run the named benchmarks (all by default); return a process exit code."""
    chosen = parse(argv) or {name: [] for name in benchmark_names()}
    names = list(chosen)
    unknown = sorted(set(names) - set(benchmark_names()))
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; known: {benchmark_names()}")
        return 2
    RESULTS_DIR.mkdir(exist_ok=True)
    for name in names:
        module = importlib.import_module(f"tests.bench.bench_{name}")
        print(f"== {name}: {(module.__doc__ or '').strip().splitlines()[0]}", flush=True)
        figures = module.run(chosen[name]) if chosen[name] else module.run()
        width = max(map(len, figures))
        for key, value in figures.items():
            print(f"  {key:<{width}}  {value}")
        path = RESULTS_DIR / f"{name}.json"
        path.write_text(json.dumps(figures, indent=2, sort_keys=True) + "\n")
        print(f"  -> {path}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
