"""``make run``: the dev stack, the service under supervisord, the demo symbols enabled.

The service itself still starts every symbol PAUSED; this script then does what
an operator would do over the REST API: create the demo configs (if missing)
and enable them, with the dev stack's operator and admin tokens.

``make run HOSTS=3`` (``--hosts 3``) starts the stack once and then three
"hosts" on this machine, each its own supervisord, run directory, host id and
ports in one consumer group (mmsvc.devstack.hosts); one host (the default) is
the demo as it always was, under ``.run``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import requests
from alembic import command
from alembic.config import Config

from mmsvc.devstack import hosts, prometheus, stack

REPO = Path(__file__).resolve().parents[2]
DEMO = {
    "BTCUSDT": {"base_spread_bps": "10", "order_size_usdt": "200", "num_levels": 3},
    "ETHUSDT": {"base_spread_bps": "12", "order_size_usdt": "150", "num_levels": 3},
    "SOL-PERP": {"base_spread_bps": "15", "order_size_usdt": "100", "num_levels": 2},
}
ADMIN_TOKEN, OPERATE_TOKEN = "dev-admin-token", "dev-operate-token"  # dev stack only


def service_env(run_dir: Path, stack_env: Mapping[str, str]) -> dict[str, str]:
    """The environment supervisord and every mmsvc process run with."""
    venv_bin = Path(sys.executable).parent
    return {
        **os.environ,
        **stack_env,
        "PATH": f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}",
        "MMSVC_RUN_DIR": str(run_dir),
        "PROMETHEUS_MULTIPROC_DIR": str(run_dir / "prometheus"),
        "HTTP_PORT": os.environ.get("HTTP_PORT", "8080"),
        "METRICS_PORT": stack_env.get("METRICS_PORT", os.environ.get("METRICS_PORT", "9090")),
    }


SERVICE_ENV = "service.env"


def write_service_env(run_dir: Path, stack_env: Mapping[str, str], env: Mapping[str, str]) -> None:
    """``<run_dir>/service.env``: the service's own settings, for ``mmsvc-admin kill`` by hand."""
    keys = [*stack_env, "MMSVC_RUN_DIR", "PROMETHEUS_MULTIPROC_DIR", "HTTP_PORT", "METRICS_PORT"]
    lines = "".join(f"{key}={env[key]}\n" for key in sorted(set(keys)) if key in env)
    (run_dir / SERVICE_ENV).write_text(lines)


def migrate(database_url: str) -> None:
    config = Config(str(REPO / "alembic.ini"))
    config.set_main_option("script_location", str(REPO / "alembic"))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    command.upgrade(config, "head")


def start_supervisord(
    run_dir: Path, env: Mapping[str, str], conf: Path = REPO / "supervisord.conf"
) -> None:
    """Start supervisord with ``conf`` unless the one of ``run_dir`` runs already."""
    for sub in ("logs", "pids", "sockets"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    if "supervisord" in stack.running_pids(run_dir):
        return
    supervisord = shutil.which("supervisord", path=env["PATH"])
    if supervisord is None:
        raise stack.StackError("supervisord is not installed in the virtual environment")
    subprocess.run([supervisord, "-c", str(conf)], env=dict(env), check=True)


def wait_http(url: str, what: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.5)
    raise stack.StackError(f"{what} not ready at {url} within {timeout:.0f}s; see .run/logs/")


def _call(method: str, url: str, token: str, body: Any = None) -> requests.Response:
    return requests.request(
        method, url, json=body, timeout=30, headers={"Authorization": f"Bearer {token}"}
    )


def enable_demo(api: str) -> dict[str, str]:
    """Create the demo configs if missing and enable them, as an operator would.

    Returns the symbols the enable refused, with the refusal: a symbol left HALTED by
    an earlier run stays HALTED (a halt is left only by a reset, D23), and the banner
    must not claim it quotes (a `make run` after a halted soak said "enabled").
    """
    refused: dict[str, str] = {}
    for symbol, config in DEMO.items():
        if _call("GET", f"{api}/v1/mm-configs/{symbol}", ADMIN_TOKEN).status_code == 404:
            created = _call(
                "POST", f"{api}/v1/mm-configs", ADMIN_TOKEN, {"symbol": symbol, **config}
            )
            if created.status_code != 201:
                raise stack.StackError(f"creating {symbol}: {created.status_code} {created.text}")
        refusal = _enable(api, symbol)
        if refusal is not None:
            refused[symbol] = refusal
    return refused


def _enable(api: str, symbol: str, timeout: float = 60) -> str | None:
    """Enable once the symbol's worker is up (a 503 while it starts is retried).

    None when it is ACTIVE now; the refusal's state and message when it is not.
    """
    deadline = time.monotonic() + timeout
    while True:
        enabled = _call("POST", f"{api}/v1/mm-configs/{symbol}/enable", OPERATE_TOKEN)
        if enabled.status_code == 200:
            return None
        if enabled.status_code == 409:
            body = enabled.json()
            if body.get("state") == "ACTIVE":
                return None
            return f"{body.get('state')}: {body.get('error', {}).get('message')}"
        if enabled.status_code != 503 or time.monotonic() > deadline:
            raise stack.StackError(f"enabling {symbol}: {enabled.status_code} {enabled.text}")
        time.sleep(0.5)


def main(argv: Sequence[str] | None = None) -> int:
    """Bring everything up and say where to look."""
    parser = argparse.ArgumentParser(prog="make run", description=__doc__)
    parser.add_argument("--hosts", type=int, default=1, help="local hosts (supervisords) to run")
    hosts_wanted = parser.parse_args(argv).hosts
    if hosts_wanted < 1:
        parser.error("--hosts must be at least 1")
    if hosts_wanted > 1:
        return multi_host_main(hosts_wanted)
    run_dir = REPO / ".run"  # supervisord.conf keeps its files in .run beside it
    try:
        stack_env = stack.read_env(run_dir) if stack.running_pids(run_dir) else stack.up(run_dir)
        migrate(stack_env["POSTGRES_URL"])
        env = service_env(run_dir, stack_env)
        write_service_env(run_dir, stack_env, env)
        start_supervisord(run_dir, env)
        prometheus.scrape(run_dir, f"127.0.0.1:{env['METRICS_PORT']}")  # again after HOSTS=N
        api = f"http://127.0.0.1:{env['HTTP_PORT']}"
        wait_http(f"{api}/readyz", "the admin API and the supervisor")
        refused = enable_demo(api)
    except (stack.StackError, KeyError, subprocess.CalledProcessError) as exc:
        print(f"make run: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    print(_banner(env, run_dir, refused))  # noqa: T201
    return 0


def multi_host_main(count: int) -> int:
    """``make run HOSTS=count``: the stack once, ``count`` local hosts, the demo enabled."""
    run_dir = REPO / ".run"
    try:
        stack_env, started = start_hosts(run_dir, count)
        create_configs(started[0].api, DEMO)
        for symbol in DEMO:
            enable_symbol(started, symbol)
    except (stack.StackError, KeyError, subprocess.CalledProcessError) as exc:
        print(f"make run: {exc}", file=sys.stderr)  # noqa: T201
        return 1
    print(_hosts_banner(stack_env, started, run_dir))  # noqa: T201
    return 0


def start_hosts(
    run_dir: Path, count: int, *, autorestart_supervisor: bool = True, database: str = "mmsvc"
) -> tuple[dict[str, str], list[hosts.Host]]:
    """The stack (started when down, migrated) and ``count`` hosts with their APIs ready."""
    running = stack.running_pids(run_dir)
    stack_env = stack.read_env(run_dir) if running else stack.up(run_dir, database)
    migrate(stack_env["POSTGRES_URL"])
    # The one-host service's endpoint is not served here: each host's is (hosts.start).
    prometheus.unscrape(run_dir, f"127.0.0.1:{stack_env['METRICS_PORT']}")
    started = [
        hosts.start(run_dir, stack_env, i, autorestart_supervisor=autorestart_supervisor)
        for i in range(1, count + 1)
    ]
    for host in started:
        wait_http(f"{host.api}/readyz", f"host {host.name}'s admin API and supervisor")
    return stack_env, started


def create_configs(api: str, configs: Mapping[str, Mapping[str, Any]]) -> None:
    """Create the configs that are missing, through one host's API (any host takes them).

    A host that does not hold the symbol's partition records it PAUSED and
    answers 202 (held_elsewhere): the holder starts its worker (D28).
    """
    for symbol, config in configs.items():
        if _call("GET", f"{api}/v1/mm-configs/{symbol}", ADMIN_TOKEN).status_code != 404:
            continue
        created = _call("POST", f"{api}/v1/mm-configs", ADMIN_TOKEN, {"symbol": symbol, **config})
        if created.status_code not in (201, 202):
            raise stack.StackError(f"creating {symbol}: {created.status_code} {created.text}")


def owners(api: str) -> dict[str, str | None]:
    """symbol -> the host (MMSVC_HOST_ID) that holds its live lease, None between owners."""
    answer = _call("GET", f"{api}/v1/mm/status", ADMIN_TOKEN)
    answer.raise_for_status()
    return {
        s["symbol"]: (s["owner"].rpartition("/")[0] if s["owner"] else None)
        for s in answer.json()["symbols"]
    }


def enable_symbol(started: Sequence[hosts.Host], symbol: str, timeout: float = 90) -> str:
    """Enable ``symbol`` through the first host's API; return the host that owns it.

    Any host's admin steers any symbol: the command reaches the owning
    supervisor through PostgreSQL (D28). A symbol between owners answers 503
    MOVING, and one whose config a holder has not started yet 404: both are
    asked again until the owner answers.
    """
    api = started[0].api
    deadline = time.monotonic() + timeout
    while True:
        try:
            enabled = _call("POST", f"{api}/v1/mm-configs/{symbol}/enable", OPERATE_TOKEN)
            if enabled.status_code in (200, 409):
                owner = owners(api).get(symbol)
                if owner is not None:
                    return owner
            elif enabled.status_code not in (404, 503):
                raise stack.StackError(f"enabling {symbol}: {enabled.status_code} {enabled.text}")
        except requests.RequestException:
            pass  # the host restarting: ask again
        if time.monotonic() > deadline:
            raise stack.StackError(f"enabling {symbol}: no owner took it within {timeout:.0f}s")
        time.sleep(0.5)


def _hosts_banner(
    stack_env: Mapping[str, str], started: Sequence[hosts.Host], run_dir: Path
) -> str:
    lines = [
        f"mmsvc runs on {len(started)} local hosts in one consumer group "
        f"({os.environ.get('KAFKA_GROUP_ID', 'mmsvc')}), sharing the dev stack; "
        f"{', '.join(DEMO)} enabled over the API.",
        "",
    ]
    for host in started:
        lines += [
            f"  {host.name}  admin   {host.api}   (-H 'Authorization: Bearer {ADMIN_TOKEN}')",
            f"      metrics {host.metrics_url}",
            f"      files   {host.run_dir}   (logs/, control.sock, sockets/)",
            f"      .venv/bin/supervisorctl -c {host.conf} status",
        ]
    lines += [
        "",
        "  Owners     curl -s -H 'Authorization: Bearer dev-read-token' "
        f"localhost:{started[0].http_port}/v1/mm/status   (owner: host/pid, epoch)",
        f"  Exchange   {stack_env.get('EXCHANGE_ADMIN_URL', '?')}   (simulator admin)",
        f"  Prometheus {stack_env.get('PROMETHEUS_URL', '?')}   (scrapes every host, label host)",
        f"  Stack logs {run_dir}/logs/",
        "",
        "Stop every host (orders canceled first) and the stack with: make stop",
    ]
    return "\n".join(lines)


def _graphs(env: Mapping[str, str]) -> str:
    """The /graph link of spread, inventory, P&L, open orders and lag for the demo symbols."""
    base = env.get("PROMETHEUS_URL")
    return prometheus.graph_url(base, list(DEMO)) if base else "? (Prometheus is not up)"


def _refusals(env: Mapping[str, str], refused: Mapping[str, str]) -> str:
    """What an earlier run left that an enable does not undo, and how to undo it."""
    if not refused:
        return ""
    lines = [f"  NOT quoting {symbol}: {why}" for symbol, why in refused.items()]
    reset = (
        f"curl -s -X POST -H 'Authorization: Bearer {ADMIN_TOKEN}' -d '{{\"symbol\": \"SYMBOL\"}}'"
        f" localhost:{env['HTTP_PORT']}/v1/mm/reset, then make run again"
    )
    return "\n".join([*lines, f"  (a halt is left only by a reset, D23: {reset})", ""])


def _banner(env: Mapping[str, str], run_dir: Path, refused: Mapping[str, str]) -> str:
    conf = REPO / "supervisord.conf"
    quoting = ", ".join(s for s in DEMO if s not in refused) or "none"
    return f"""
mmsvc is making markets on the simulated exchange: {quoting} (enabled over the API).
{_refusals(env, refused)}
  API        http://127.0.0.1:{env["HTTP_PORT"]}   (token: -H 'Authorization: Bearer {ADMIN_TOKEN}')
             curl -s -H 'Authorization: Bearer dev-read-token' \\
                  localhost:{env["HTTP_PORT"]}/v1/mm/status
  Metrics    http://127.0.0.1:{env["METRICS_PORT"]}/metrics
  Prometheus {env.get("PROMETHEUS_URL", "?")}   (targets: /targets, alerts: /alerts; shipped rules)
  Graphs     {_graphs(env)}
  Logs       {run_dir}/logs/   (JSON lines; mmsvc-supervisor.log has the workers)
  Processes  .venv/bin/supervisorctl status   (from {conf.parent})
  Exchange   {env.get("EXCHANGE_ADMIN_URL", "?")}   (simulator admin: faults, market moves)

Stop everything with: make stop
"""


if __name__ == "__main__":
    raise SystemExit(main())
