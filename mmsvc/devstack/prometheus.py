"""A real Prometheus beside the dev stack: scrapes the metrics endpoint, evaluates the rules.

Dev and tests only. The server is Debian's ``prometheus`` package (``make
prometheus`` installs it), started on a free port with a config generated into
``<run_dir>/prometheus-server/`` and its own data directory there (the service's
multiprocess metric files live in ``<run_dir>/prometheus``, a different thing).
Scrape and rule evaluation run every second so that an alert is seen quickly;
the rule files are loaded exactly as shipped, ``for:`` durations included.

What it scrapes is a file (``targets.json``, Prometheus' file-based discovery):
the one-host service's METRICS_PORT at first, then each local host of ``make
run HOSTS=N`` or a chaos run as it starts (`scrape`, labelled with its host),
without a restart of Prometheus.
"""

from __future__ import annotations

import json
import shutil
import time
import urllib.parse
from collections.abc import Mapping, Sequence
from pathlib import Path

import requests

from mmsvc.devstack import processes

NAME = "prometheus"
JOB = "mmsvc"  # MMMetricsDown watches up{job="mmsvc"}
RULES_DIR = Path(__file__).resolve().parents[1] / "observability" / "prometheus"
RULE_FILES = (RULES_DIR / "alerts.yml",)
DEV_INTERVAL = "1s"

# What an operator opens first: the graphs of the spec's per-symbol gauges and the lag.
GRAPHS = (
    "mm_spread_bps{{symbol=~{symbols}}}",
    "mm_inventory_usdt{{symbol=~{symbols}}}",
    "mm_pnl_usdt{{symbol=~{symbols}}}",
    "mm_open_orders{{symbol=~{symbols}}}",
    "max by (topic) (mm_kafka_lag_seconds)",
)


def binary() -> str:
    """The Prometheus server, or a StackError saying how to install it."""
    found = shutil.which("prometheus") or (
        "/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None
    )
    if found is None:
        raise processes.StackError(
            "Prometheus is not installed: `make prometheus` installs Debian's package"
        )
    return found


def config(targets_file: Path, interval: str = DEV_INTERVAL) -> str:
    """prometheus.yml scraping the targets listed in ``targets_file`` as job mmsvc, with
    the shipped rules (JSON is YAML)."""
    document = {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(path) for path in RULE_FILES],
        "scrape_configs": [
            {
                "job_name": JOB,
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": interval}],
            }
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def targets_file(run_dir: Path) -> Path:
    """The file listing what the stack's Prometheus scrapes."""
    return run_dir / "prometheus-server" / "targets.json"


def scrape(run_dir: Path, target: str, labels: Mapping[str, str] | None = None) -> None:
    """Scrape ``target`` (host:port) too, with ``labels`` (a host's name, say); idempotent."""
    listed = _listed(run_dir)
    listed[target] = dict(labels or {})
    _write_targets(run_dir, listed)


def unscrape(run_dir: Path, target: str) -> None:
    """Stop scraping ``target`` (a no-op when it is not listed)."""
    listed = _listed(run_dir)
    if listed.pop(target, None) is not None:
        _write_targets(run_dir, listed)


def _listed(run_dir: Path) -> dict[str, dict[str, str]]:
    path = targets_file(run_dir)
    groups = json.loads(path.read_text()) if path.exists() else []
    return {target: group.get("labels", {}) for group in groups for target in group["targets"]}


def _write_targets(run_dir: Path, listed: Mapping[str, Mapping[str, str]]) -> None:
    """Replace the file in one rename: Prometheus never reads half of it."""
    groups = [{"targets": [t], "labels": dict(labels)} for t, labels in sorted(listed.items())]
    path = targets_file(run_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    partial.write_text(json.dumps(groups, indent=2) + "\n")
    partial.replace(path)


def start(run_dir: Path, targets: Sequence[str], timeout: float = 30) -> str:
    """Start Prometheus on a free port scraping ``targets``; return its base URL once ready."""
    home = run_dir / "prometheus-server"
    (home / "data").mkdir(parents=True, exist_ok=True)
    _write_targets(run_dir, {target: {} for target in targets})
    config_file = home / "prometheus.yml"
    config_file.write_text(config(targets_file(run_dir)))
    port = processes.free_port()
    argv = [
        binary(),
        f"--config.file={config_file}",
        f"--storage.tsdb.path={home / 'data'}",
        "--storage.tsdb.retention.time=2d",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    proc = processes.start_process(run_dir, NAME, argv)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise processes.StackError(
                f"prometheus exited with code {proc.returncode}; see its log"
            )
        try:
            if requests.get(f"{url}/-/ready", timeout=1).status_code == 200:
                return url
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise processes.StackError(f"prometheus not ready at {url} within {timeout:.0f}s")
        time.sleep(0.1)


def graph_url(base: str, symbols: Sequence[str], range_input: str = "15m") -> str:
    """A /graph link showing spread, inventory, P&L, open orders and lag for ``symbols``."""
    matcher = json.dumps("|".join(symbols))  # a PromQL string literal
    params: dict[str, str] = {}
    for i, template in enumerate(GRAPHS):
        params[f"g{i}.expr"] = template.format(symbols=matcher)
        params[f"g{i}.tab"] = "0"  # the graph tab
        params[f"g{i}.range_input"] = range_input
    return f"{base}/graph?{urllib.parse.urlencode(params)}"
