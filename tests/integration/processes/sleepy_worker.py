"""A stand-in worker module for the template tests: it says who it is, then sleeps."""

from __future__ import annotations

import os
import sys
import time


def main(argv: list[str]) -> None:
    """Print the forked worker's argv and parent, then sleep until signaled."""
    print(f"sleepy worker {os.getpid()} ppid {os.getppid()} argv {argv}", file=sys.stderr)
    time.sleep(300)
