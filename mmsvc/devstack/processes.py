"""Starting the dev stack's processes: free ports, pid files and logs under the run directory."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

__all__ = ["StackError", "free_port", "start_process", "wait_for_port"]


class StackError(RuntimeError):
    """A dev-stack component failed to start."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, name: str, proc: subprocess.Popen[bytes], timeout: float = 20) -> None:
    """Wait until ``port`` accepts connections, failing fast if ``proc`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise StackError(f"{name} exited with code {proc.returncode}; see its log")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.05)
    raise StackError(f"{name} did not listen on 127.0.0.1:{port} within {timeout:.0f}s")


def start_process(
    run_dir: Path, name: str, argv: Sequence[str], env: Mapping[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start ``argv`` in its own session with a pid file and a log under ``run_dir``."""
    (run_dir / "pids").mkdir(parents=True, exist_ok=True)
    (run_dir / "logs").mkdir(parents=True, exist_ok=True)
    log = (run_dir / "logs" / f"{name}.log").open("ab")
    proc = subprocess.Popen(
        list(argv),
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        env={**os.environ, **(env or {})},
    )
    log.close()
    (run_dir / "pids" / f"{name}.pid").write_text(f"{proc.pid}\n")
    return proc
