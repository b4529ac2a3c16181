"""Several "hosts" on this machine: one supervisord each, all sharing one dev stack (D28).

``make run HOSTS=3`` and ``make chaos`` run the service as a multi-host
deployment would, on one box: each host has its own run directory
(``<run_dir>/hosts/<name>``, holding its supervisord's socket, pid file and
logs, the supervisor's control socket, the workers' sockets and the metrics
files), its own ``MMSVC_HOST_ID``, admin HTTP port and metrics port, and every
host joins one ``KAFKA_GROUP_ID``, so the group's assignment splits the
symbols between them. PostgreSQL, Redis, the broker, the registry and the
simulator are the stack's, shared as a real deployment shares them.

Each host's supervisord.conf is the repository's, with its ``.run`` paths
pointed at the host's directory: one definition of the programs, not a copy.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mmsvc.devstack import prometheus, stack
from mmsvc.devstack.processes import free_port

REPO = Path(__file__).resolve().parents[2]
HOSTS_DIR = "hosts"
SERVICE_ENV = "service.env"
SUPERVISOR = "mmsvc:mmsvc-supervisor"
# Host i prefers admin port 8080 + i and metrics port 9090 + i (8080/9090 stay the
# one-host demo's); a port taken by something else is replaced by a free one.
HTTP_BASE, METRICS_BASE = 8080, 9090


@dataclass(frozen=True, slots=True)
class Host:
    """One host of the local deployment: its name (MMSVC_HOST_ID), directory and ports."""

    name: str
    run_dir: Path
    http_port: int
    metrics_port: int

    @property
    def api(self) -> str:
        """The base URL of this host's admin API."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def metrics_url(self) -> str:
        """This host's metrics endpoint (every process of the host, one page)."""
        return f"http://127.0.0.1:{self.metrics_port}/metrics"

    @property
    def conf(self) -> Path:
        """This host's supervisord.conf."""
        return self.run_dir / "supervisord.conf"


def host_name(index: int) -> str:
    """h1, h2, ...: the MMSVC_HOST_ID of the index-th local host."""
    return f"h{index}"


def host_dir(run_dir: Path, name: str) -> Path:
    """Where host ``name`` keeps its files under the stack's run directory."""
    return run_dir / HOSTS_DIR / name


def supervisord_conf(run_dir: Path, *, autorestart_supervisor: bool = True) -> str:
    """The repository's supervisord.conf with its ``.run`` paths in ``run_dir``.

    ``autorestart_supervisor`` False leaves a killed supervisor down, so a chaos
    run can time the takeover by the other hosts before it starts it again.
    """
    text = (REPO / "supervisord.conf").read_text().replace("%(here)s/.run", str(run_dir))
    if not autorestart_supervisor:
        text = re.sub(
            r"(\[program:mmsvc-supervisor\][^\[]*?)autorestart=true",
            r"\1autorestart=false",
            text,
            count=1,
        )
    return text


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _ports(directory: Path, index: int) -> tuple[int, int]:
    """The host's ports: those it had before (a restart keeps them), else new ones."""
    previous = _read(directory / SERVICE_ENV)
    if "HTTP_PORT" in previous and "METRICS_PORT" in previous:
        return int(previous["HTTP_PORT"]), int(previous["METRICS_PORT"])
    http = HTTP_BASE + index if _port_free(HTTP_BASE + index) else free_port()
    metrics = METRICS_BASE + index if _port_free(METRICS_BASE + index) else free_port()
    return http, metrics


def _read(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs}


def host_env(host: Host, stack_env: Mapping[str, str]) -> dict[str, str]:
    """The environment the host's supervisord and every mmsvc process of it run with."""
    from mmsvc.devstack import run  # noqa: PLC0415 - run builds on this module

    env = run.service_env(host.run_dir, stack_env)
    env.update(
        HTTP_PORT=str(host.http_port),
        METRICS_PORT=str(host.metrics_port),
        MMSVC_HOST_ID=host.name,
        KAFKA_GROUP_ID=os.environ.get("KAFKA_GROUP_ID", "mmsvc"),
    )
    return env


def start(
    run_dir: Path,
    stack_env: Mapping[str, str],
    index: int,
    *,
    autorestart_supervisor: bool = True,
) -> Host:
    """Start the index-th host's supervisord (a no-op when it runs); return the host."""
    from mmsvc.devstack import run  # noqa: PLC0415 - run builds on this module

    name = host_name(index)
    directory = host_dir(run_dir, name)
    directory.mkdir(parents=True, exist_ok=True)
    http, metrics = _ports(directory, index)
    host = Host(name, directory, http, metrics)
    host.conf.write_text(supervisord_conf(directory, autorestart_supervisor=autorestart_supervisor))
    env = host_env(host, stack_env)
    keys = ["MMSVC_HOST_ID", "KAFKA_GROUP_ID"]
    run.write_service_env(directory, {**stack_env, **{k: env[k] for k in keys}}, env)
    run.start_supervisord(directory, env, host.conf)
    prometheus.scrape(run_dir, _metrics_target(host), {"host": host.name})
    return host


def _metrics_target(host: Host) -> str:
    return f"127.0.0.1:{host.metrics_port}"


def load(run_dir: Path) -> list[Host]:
    """The hosts that were started under ``run_dir`` (running or not), by name."""
    found = []
    for directory in sorted((run_dir / HOSTS_DIR).glob("h*")):
        env = _read(directory / SERVICE_ENV)
        if "HTTP_PORT" in env and "METRICS_PORT" in env:
            found.append(
                Host(directory.name, directory, int(env["HTTP_PORT"]), int(env["METRICS_PORT"]))
            )
    return sorted(found, key=lambda h: int(h.name[1:]) if h.name[1:].isdigit() else 0)


def supervisord_pid(host: Host) -> int | None:
    """The host's supervisord while it runs."""
    return stack.running_pids(host.run_dir).get("supervisord")


def supervisorctl(host: Host, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``supervisorctl -c <host's conf> args`` (its answer, never raising on a non-zero exit)."""
    binary = shutil.which("supervisorctl", path=str(Path(sys.executable).parent))
    if binary is None:
        raise stack.StackError("supervisorctl is not installed in the virtual environment")
    return subprocess.run(
        [binary, "-c", str(host.conf), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def program_pid(host: Host, program: str = SUPERVISOR) -> int | None:
    """The pid of one of the host's programs while it runs (supervisorctl pid), else None."""
    if supervisord_pid(host) is None:
        return None
    answer = supervisorctl(host, "pid", program, timeout=30).stdout.strip()
    return int(answer) if answer.isdigit() and int(answer) > 0 else None


def stop(hosts: list[Host], grace: float = stack.SERVICE_GRACE_S) -> list[str]:
    """Stop the hosts' supervisords together; return the names that were running.

    SIGTERM to each supervisord stops its programs in order: the supervisor
    stops its workers (each cancels its symbol's orders and releases its lease)
    before it leaves the group, so the exchange must still be up. Stopped
    together, no host takes over what another is draining for long.
    """
    running = {h.name: pid for h in hosts if (pid := supervisord_pid(h)) is not None}
    for host in hosts:  # gone on purpose: not a metrics endpoint down (MMMetricsDown)
        prometheus.unscrape(host.run_dir.parents[1], _metrics_target(host))
    for pid in running.values():
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(supervisord_pid(h) for h in hosts):
        time.sleep(0.2)
    for host in hosts:  # a supervisord past its grace: its process groups go down hard
        pid = supervisord_pid(host)
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
            (host.run_dir / "pids" / "supervisord.pid").unlink(missing_ok=True)
    return sorted(running)


def stop_all(run_dir: Path) -> list[str]:
    """Stop every host started under ``run_dir`` (``make stop`` does this before the stack)."""
    return stop(load(run_dir))
