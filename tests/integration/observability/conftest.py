"""Real subprocesses sharing one PROMETHEUS_MULTIPROC_DIR, and the metrics process serving it."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mmsvc.devstack import stack
from tests.fixtures.waiting import wait_serving
from tests.integration.observability.roles import READY

REPO = Path(__file__).resolve().parents[3]


def service_env(prom_dir: Path, **extra: str) -> dict[str, str]:
    """The environment of an mmsvc process: valid settings that reach no server."""
    env = {k: v for k, v in os.environ.items() if k != "OPENOBSERVE_OTLP_ENDPOINT"}
    env.update(
        POSTGRES_URL="postgresql://mm:unused@127.0.0.1:1/mm",
        REDIS_URL="redis://127.0.0.1:1/0",
        KAFKA_BROKERS="127.0.0.1:1",
        SCHEMA_REGISTRY_URL="http://127.0.0.1:1",
        DISABLE_AUTH="true",
        PROMETHEUS_MULTIPROC_DIR=str(prom_dir),
        MMSVC_RUN_DIR=str(prom_dir.parent),
    )
    env.update(extra)
    return env


class Processes:
    """Starts subprocesses and guarantees none outlives the test."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.started: list[subprocess.Popen[str]] = []

    def role(self, *args: str, timeout: float = 20.0) -> subprocess.Popen[str]:
        """Start a role of roles.py and wait until it has written its metrics."""
        proc = self.spawn("-m", "tests.integration.observability.roles", *args)
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], timeout)
        line = proc.stdout.readline().strip() if ready else ""
        assert line == READY, f"{args} did not get ready: {line!r}"
        return proc

    def spawn(self, *argv: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            [sys.executable, *argv], cwd=REPO, env=self.env, stdout=subprocess.PIPE, text=True
        )
        self.started.append(proc)
        return proc

    def kill_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.started:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()


@pytest.fixture
def prom_dir(tmp_path: Path) -> Path:
    path = tmp_path / "prometheus"
    path.mkdir()
    return path


@pytest.fixture
def procs(prom_dir: Path) -> Iterator[Processes]:
    p = Processes(service_env(prom_dir))
    try:
        yield p
    finally:
        p.kill_all()


@pytest.fixture
def metrics_url(procs: Processes) -> str:
    """The metrics process, started like supervisord starts it, on a free port."""
    port = stack.free_port()
    procs.env = {**procs.env, "METRICS_PORT": str(port)}
    proc = procs.spawn("-m", "mmsvc.processes.metrics")
    procs.env = {k: v for k, v in procs.env.items() if k != "METRICS_PORT"}
    base = f"http://127.0.0.1:{port}"
    wait_serving(f"{base}/healthz", proc, "the metrics process", timeout=20)
    return f"{base}/metrics"
