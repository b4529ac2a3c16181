"""N symbols on one host (issue 13, D26/D27): start-up, quoting, memory, connections, kill.

python -m tests.bench scale --symbols N     (default 200)
    [--clients C]                 concurrent admin API clients (default 8)
    [--response-timeout-ms MS]    KILL_SWITCH_RESPONSE_TIMEOUT_MS (default: the spec's 50)

The simulator lists N generated instruments (SIM0001USDT...); the service
(supervisor, outbox relay, admin API under gunicorn) runs on a scratch
database, its workers through PgBouncer in transaction mode (D27, D32), as
the dev stack runs them. Phases, in order, each with a timeout that ends the
benchmark with a line saying where it stopped and what it had reached (never
a hang):

1. create N configs over the admin API (POST /v1/mm-configs, C clients at once, a 503
   "retry shortly" retried), timed, refusals counted;
2. enable all over the API (C clients): first enable to both sides of all N quoting at
   the simulator; symbols halted on the way are listed with their trigger;
3. while all quote: USS per worker (median, p95) against a bare ``python -c`` interpreter,
   the whole service's RSS and PSS, PostgreSQL connections in use, idle CPU per symbol;
4. emergency kill over the API: until the simulator lists zero open orders of ours,
   per symbol (p50, p99) and in total;
5. restart the supervisor: start to all N workers connected (STATUS answers), and
   how many workers were restarted on the way and how many the silence rule killed.

Throughout, PostgreSQL's connections to the service's database (server side:
through PgBouncer, its server connections) and the load average are sampled
every half second; their peaks are figures. Each figure is printed beside its
reference (the issue's acceptance at 200).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests

from mmsvc.devstack import pgbouncer, stack
from mmsvc.devstack.exchange.config import generated_symbol
from mmsvc.domain.state import Command
from mmsvc.domain.symbol_config import ConfigFields
from tests.bench._service import Venue, service_env
from tests.bench._stack import OTHER_ACCOUNTS, BenchStack, control, load_average
from tests.fixtures.waiting import wait_for

DEFAULT_SYMBOLS = 200
DEFAULT_CLIENTS = 8
CPU_WINDOW_S = 10.0
SAMPLE_S = 0.5
RETRY_S = 0.5  # a 503 "worker not connected, retry shortly" is asked again after this
REFERENCE = {
    "connected_s": "<= 20 s at 200 symbols, none killed by the silence rule",
    "quoting_s": "<= 30 s at 200 symbols",
    "uss": "median <= 25 MB",
    "rss": "whole service <= 6 GB at 200 symbols",
    "pg": "<= 60 connections at 200 symbols (max_connections = 100)",
    "kill": "zero open orders within 2 s at 200 symbols",
}


class Stop(Exception):  # noqa: N818 - a phase's end, reported as a figure
    """A phase ran out of time or was refused: the benchmark reports where and stops."""


@dataclass
class Scale:
    """One run: the stack, the symbols and the figures gathered so far."""

    bench: BenchStack
    symbols: list[str]
    figures: dict[str, object] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    admin_url: str = ""
    venue: Venue | None = None
    http: requests.Session = field(default_factory=requests.Session)
    clients: int = DEFAULT_CLIENTS
    response_timeout_ms: int | None = None
    sampler: Sampler | None = None

    @property
    def n(self) -> int:
        return len(self.symbols)

    @property
    def endpoint(self) -> str:
        return self.env["MMSVC_CONTROL_ENDPOINT"]

    def the_venue(self) -> Venue:
        if self.venue is None:
            raise Stop("the simulator is not up")
        return self.venue


def run(argv: Sequence[str] | None = None) -> dict[str, object]:
    """Run every phase until one stops; return the figures gathered."""
    parser = argparse.ArgumentParser(prog="python -m tests.bench scale")
    parser.add_argument("--symbols", type=int, default=DEFAULT_SYMBOLS)
    parser.add_argument("--clients", type=int, default=DEFAULT_CLIENTS)
    parser.add_argument("--response-timeout-ms", type=int, default=None)
    options = parser.parse_args(list(argv or []))
    n = options.symbols
    started = time.monotonic()
    load_before = load_average()
    with BenchStack("scale") as bench:
        scale = Scale(bench, [generated_symbol("SIM", i) for i in range(1, n + 1)])
        scale.clients = options.clients
        scale.response_timeout_ms = options.response_timeout_ms
        scale.figures["symbols"] = n
        scale.figures["kill_switch_response_timeout_ms"] = (
            "50 (the spec's default)"
            if options.response_timeout_ms is None
            else f"{options.response_timeout_ms} (set for this run; the spec's default is 50)"
        )
        try:
            for phase in PHASES:
                try:
                    phase(scale)
                except (TimeoutError, Stop, requests.RequestException, RuntimeError) as exc:
                    scale.figures["stopped"] = f"in {phase.__name__}: {exc}"
                    print(f"  stopped in {phase.__name__}: {exc}", flush=True)
                    bench.keep_logs = True
                    break
            else:
                scale.figures["stopped"] = "no: every phase ran"
        finally:
            if scale.sampler is not None:
                scale.figures.update(scale.sampler.stop())
            scale.http.close()
            if scale.venue is not None:
                scale.venue.close()
    scale.figures["load_average"] = f"before {load_before}, after {load_average()}"
    scale.figures["bench_took_s"] = round(time.monotonic() - started, 1)
    return scale.figures


# ------------------------------------------------------------------ phases


def start_stack(scale: Scale) -> None:
    """Broker, registry and the simulator with N generated instruments."""
    bench = scale.bench
    kafka, registry = bench.broker(), bench.registry()
    config = bench.run_dir / "exchange.toml"
    config.write_text(exchange_toml(scale.n))
    urls = bench.exchange(kafka, registry, config)
    account = str(uuid.uuid4())
    scale.venue = Venue(urls, account)
    scale.env = service_env(bench, urls, kafka, registry, ConfigFields(), symbols=())
    scale.env.update(
        SYSTEM_ACCOUNT_ID=account,
        HTTP_PORT=str(stack.free_port()),
        MAX_SYMBOLS=str(max(scale.n, DEFAULT_SYMBOLS)),
        ADMIN_WORKERS="2",
    )
    if scale.response_timeout_ms is not None:
        scale.env["KILL_SWITCH_RESPONSE_TIMEOUT_MS"] = str(scale.response_timeout_ms)
    # Workers through the pooler, as the dev stack runs them (D27, D32).
    scale.env[pgbouncer.ENV_KEY] = pgbouncer.start(bench.run_dir, scale.env["POSTGRES_URL"])
    scale.admin_url = f"http://127.0.0.1:{scale.env['HTTP_PORT']}"
    scale.sampler = Sampler(_pg_url(scale))


def start_service(scale: Scale) -> None:
    """Supervisor, outbox relay and the admin API, as supervisord runs them."""
    bench = scale.bench
    bench.start_service("supervisor", "mmsvc.processes.supervisor.main", scale.env)
    bench.start_service("outbox", "mmsvc.processes.outbox", scale.env)
    gunicorn = [
        "-c",
        "python:mmsvc.processes.admin.gunicorn_conf",
        "mmsvc.processes.admin.wsgi:app",
    ]
    bench.start_service("admin", "gunicorn", scale.env, gunicorn)
    wait_for(lambda: _healthy(scale), 60, "the admin API")
    wait_for(lambda: _pinged(scale) is not None, 60, "the supervisor")


def create_configs(scale: Scale) -> None:
    """POST /v1/mm-configs for every symbol, ``clients`` at once, as an operator's script would."""
    t0 = time.monotonic()
    answers = _each(scale, scale.symbols, "/v1/mm-configs", lambda s: {"symbol": s}, 201)
    took = sorted(t for _, t in answers.values())
    refused = {s: status for s, (status, _) in answers.items() if status}
    scale.figures["create_configs_s"] = (
        f"{time.monotonic() - t0:.1f} in all with {scale.clients} clients, "
        f"{statistics.median(took):.2f} median per config (max {max(took):.2f}), "
        f"{len(refused)} refused, {_restarts(scale)} worker restarts"
    )
    if refused:
        scale.figures["create_refused"] = refused
        raise Stop(f"{len(refused)} of {scale.n} configs refused")


def _each(
    scale: Scale,
    symbols: Iterable[str],
    path: str,
    body: Callable[[str], dict[str, object] | None],
    expected: int,
) -> dict[str, tuple[str, float]]:
    """POST ``path`` (``{symbol}`` filled in) for each symbol with ``clients`` threads.

    By symbol: "" or the refusal, and the seconds it took. A 503 (the worker
    is not connected yet: "retry shortly") is retried for up to a minute.
    """
    local = threading.local()

    def one(symbol: str) -> tuple[str, tuple[str, float]]:
        if not hasattr(local, "http"):
            local.http = requests.Session()
        t0 = time.monotonic()
        deadline = t0 + 60
        url = scale.admin_url + path.format(symbol=symbol)
        retried = False
        while True:
            response = local.http.post(url, json=body(symbol), timeout=60)
            if response.status_code != 503 or time.monotonic() > deadline:
                break
            retried = True
            time.sleep(RETRY_S)
        took = time.monotonic() - t0
        # A create answered 503 (its worker did not answer in time) has written its
        # row: the retry's 409 "exists" is that create, done.
        done = response.status_code == expected or (retried and response.status_code == 409)
        if done:
            return symbol, ("", took)
        return symbol, (f"{response.status_code} {response.text[:120]}", took)

    with ThreadPoolExecutor(scale.clients) as pool:
        return dict(pool.map(one, symbols))


def restart_supervisor(scale: Scale) -> None:
    """Stop the supervisor (its workers with it), start it: time to all N connected."""
    bench = scale.bench
    bench.stop_one("supervisor")
    t0 = time.monotonic()
    bench.start_service("supervisor", "mmsvc.processes.supervisor.main", scale.env)
    connected: set[str] = set()

    def all_connected() -> bool:
        for symbol in scale.symbols:
            if symbol not in connected and _answers(scale, symbol):
                connected.add(symbol)
        return len(connected) == scale.n

    timeout = 60 + scale.n // 2
    try:
        wait_for(all_connected, timeout, "all workers connected", poll_s=0.2)
    except TimeoutError:
        restarts = _restarts(scale)
        raise Stop(
            f"{len(connected)} of {scale.n} connected after {timeout} s; "
            f"{restarts} worker restarts, {_silence_kills(scale)} silence-rule kills "
            "(the supervisor log says why)"
        ) from None
    took = time.monotonic() - t0
    restarts = _restarts(scale)
    scale.figures["supervisor_start_to_all_connected_s"] = (
        f"{took:.1f} with {restarts} worker restarts, {_silence_kills(scale)} silence-rule kills "
        f"since the benchmark began (reference: {REFERENCE['connected_s']})"
    )


def enable_all(scale: Scale) -> None:
    """POST enable for every symbol; time until both sides of all N rest at the simulator."""
    venue = scale.the_venue()
    t0 = time.monotonic()
    answers = _each(scale, scale.symbols, "/v1/mm-configs/{symbol}/enable", lambda _: None, 200)
    enabled = time.monotonic() - t0
    refused = {s: status for s, (status, _) in answers.items() if status}
    if refused:
        scale.figures["enable_refused"] = refused
    quoting: set[tuple[str, str]] = set()

    def all_quoting() -> bool:
        quoting.update((o["symbol"], o["side"]) for o in venue.our_orders("OPEN"))
        return len(quoting) == 2 * scale.n

    timeout = 30 + scale.n // 2
    with contextlib.suppress(TimeoutError):
        wait_for(all_quoting, timeout, "both sides quoted on every symbol", poll_s=0.5)
    took = time.monotonic() - t0
    symbols = len({symbol for symbol, _ in quoting})
    halted = _halted(scale)
    if halted:
        scale.figures["halted_after_enable"] = halted
    if symbols < scale.n:
        scale.figures["enable_all_to_all_quoting_s"] = (
            f"not reached: {symbols} of {scale.n} symbols quoted after {took:.0f} s, "
            f"{len(refused)} enables refused, {len(halted)} symbols halted"
        )
        if not symbols:
            raise Stop("no symbol quoted")
        return
    scale.figures["enable_all_to_all_quoting_s"] = (
        f"{took:.1f} with {scale.clients} clients (the enables took {enabled:.1f}; "
        f"reference: {REFERENCE['quoting_s']})"
    )


def _halted(scale: Scale) -> dict[str, str]:
    """Symbols HALTED (by their kill switch), with trigger and detail, from GET /v1/mm/status."""
    response = scale.http.get(f"{scale.admin_url}/v1/mm/status", timeout=30)
    response.raise_for_status()
    symbols = response.json().get("symbols", [])
    return {
        s["symbol"]: f"{s.get('trigger')}: {s.get('trigger_detail') or ''}"[:120]
        for s in symbols
        if s.get("state") == "HALTED"
    }


def measure_quoting(scale: Scale) -> None:
    """Memory, connections and idle CPU while all N quote."""
    workers = [w["pid"] for w in (_pinged(scale) or {}).values() if w.get("pid")]
    if not workers:
        raise Stop(f"no worker pid for {scale.n} symbols")
    uss = sorted(_memory(pid)["uss"] for pid in workers)
    bare = _bare_interpreter_uss()
    scale.figures["worker_uss_mb"] = (
        f"median {_mb(statistics.median(uss))}, p95 {_mb(_pct(uss, 95))} of {len(workers)} "
        f"workers; bare python -c: {_mb(bare)} (reference: {REFERENCE['uss']})"
    )
    service = _service_pids(scale)
    rss = sum(_memory(pid)["rss"] for pid in service)
    pss = sum(_memory(pid)["pss"] for pid in service)
    scale.figures["service_memory"] = (
        f"RSS {_mb(rss)} summed over {len(service)} processes, PSS {_mb(pss)} "
        f"(reference: {REFERENCE['rss']})"
    )
    scale.figures["postgres_connections"] = f"{_pg_connections(scale)} ({REFERENCE['pg']})"
    cpu = _cpu_percent(workers, CPU_WINDOW_S)
    scale.figures["idle_quoting_cpu_percent_of_a_core"] = (
        f"per symbol median {statistics.median(cpu):.2f}, p95 {_pct(sorted(cpu), 95):.2f}; "
        f"all workers {sum(cpu):.1f} (over {CPU_WINDOW_S:.0f} s)"
    )


def emergency_kill(scale: Scale) -> None:
    """POST /v1/mm/emergency/kill; time until the simulator lists no open order of ours.

    The simulator is polled while the request is in flight: the supervisor's
    account-wide cancel-all goes out before the workers answer, and the API
    answers only once they have (or after its timeout).
    """
    venue = scale.the_venue()
    open_before = {o["symbol"] for o in venue.our_orders("OPEN")}
    flat_at: dict[str, float] = {}
    answer: dict[str, object] = {}

    def post() -> None:
        with requests.Session() as http:
            response = http.post(f"{scale.admin_url}/v1/mm/emergency/kill", json={}, timeout=60)
        answer["status"], answer["s"] = response.status_code, time.monotonic() - t0

    def flat() -> bool:
        still_open = {o["symbol"] for o in venue.our_orders("OPEN")}
        now = time.monotonic() - t0
        for symbol in open_before - still_open:
            flat_at.setdefault(symbol, now)
        return not still_open

    t0 = time.monotonic()
    request = threading.Thread(target=post, name="kill")
    request.start()
    try:
        wait_for(flat, 60, "zero open orders", poll_s=0.05)
    except TimeoutError:
        raise Stop(f"{len(flat_at)} of {len(open_before)} symbols flat after 60 s") from None
    finally:
        request.join(70)
    times = sorted(flat_at.values()) or [0.0]
    scale.figures["emergency_kill_to_zero_open_s"] = (
        f"total {max(times):.2f}, per symbol p50 {_pct(times, 50):.2f} p99 {_pct(times, 99):.2f} "
        f"({len(open_before)} symbols quoting); the API answered {answer.get('status')} after "
        f"{answer.get('s', float('nan')):.2f} (reference: {REFERENCE['kill']})"
    )


PHASES: tuple[Callable[[Scale], None], ...] = (
    start_stack,
    start_service,
    create_configs,
    enable_all,
    measure_quoting,
    emergency_kill,
    # Last: today a restart's start-up storm can keep every worker from connecting.
    restart_supervisor,
)


# ----------------------------------------------------------------- helpers


def exchange_toml(generated: int) -> str:
    """A simulator config with no named instrument and ``generated`` generated ones."""
    accounts = ", ".join(f'"{a}"' for a in OTHER_ACCOUNTS)
    return (
        "[exchange]\nsnapshot_interval_s = 5.0\nmark_interval_s = 1.0\n"
        'maker_fee_bps = "-1"\ntaker_fee_bps = "5"\n'
        f"other_accounts = [{accounts}]\norder_service_tokens = []\n"
        f"generated_instruments = {generated}\n"
    )


def _healthy(scale: Scale) -> bool:
    if not scale.bench.alive("admin"):
        raise RuntimeError("the admin API exited; see its log")
    # Not listening yet, or too slow to answer under load: asked again.
    with contextlib.suppress(requests.ConnectionError, requests.Timeout):
        return scale.http.get(f"{scale.admin_url}/healthz", timeout=5).status_code == 200
    return False


def _pinged(scale: Scale) -> dict[str, dict[str, int]] | None:
    """The supervisor's workers (pid, alive, restarts) by symbol; None while it is not up."""
    if not scale.bench.alive("supervisor"):
        raise RuntimeError("the supervisor exited; see its log")
    try:
        status, body = control(scale.endpoint, Command.PING)
    except TimeoutError:
        return None
    return dict(body.get("workers", {})) if status == 200 else None


def _restarts(scale: Scale) -> int:
    return sum(w.get("restarts", 0) for w in (_pinged(scale) or {}).values())


def _silence_kills(scale: Scale) -> int:
    """Workers the supervisor killed as silent (its log line), since the benchmark began."""
    log = scale.bench.run_dir / "logs" / "supervisor.log"
    with contextlib.suppress(OSError), log.open(errors="replace") as lines:
        return sum('"worker silent; killing it"' in line for line in lines)
    return 0


def _answers(scale: Scale, symbol: str) -> bool:
    try:
        return control(scale.endpoint, Command.STATUS, symbol)[0] == 200
    except TimeoutError:
        return False


def _memory(pid: int) -> dict[str, int]:
    """RSS, PSS and USS (private clean + dirty) of ``pid`` in bytes, from smaps_rollup."""
    fields: dict[str, int] = {}
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            name, _, rest = line.partition(":")
            if rest.strip().endswith("kB"):
                fields[name] = int(rest.split()[0]) * 1024
    private = fields.get("Private_Clean", 0) + fields.get("Private_Dirty", 0)
    return {"rss": fields.get("Rss", 0), "pss": fields.get("Pss", 0), "uss": private}


def _bare_interpreter_uss() -> int:
    """USS of a bare interpreter (``python -c``, waiting on stdin), the floor per process."""
    waiting = "import sys; print('up', flush=True); sys.stdin.read()"
    proc = subprocess.Popen(
        [sys.executable, "-c", waiting], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        proc.stdout.readline()
        return _memory(proc.pid)["uss"]
    finally:
        proc.kill()
        proc.wait(10)


def _descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
    return found


def _service_pids(scale: Scale) -> list[int]:
    pids: list[int] = []
    for name in ("supervisor", "outbox", "admin"):
        pid = scale.bench.pid(name)
        if pid is not None:
            pids += _descendants(pid)
    return pids


def _pg_url(scale: Scale) -> str:
    return scale.env["POSTGRES_URL"].replace("postgresql+psycopg://", "postgresql://")


_PG_COUNT = (
    "SELECT count(*) FILTER (WHERE datname = current_database() AND pid <> pg_backend_pid()),"
    " count(*) FILTER (WHERE datname = current_database() AND pid <> pg_backend_pid()"
    "   AND state = 'active'),"
    " count(*) FILTER (WHERE backend_type = 'client backend'),"
    " current_setting('max_connections')::int FROM pg_stat_activity"
)


def _pg_connections(scale: Scale) -> str:
    """PostgreSQL's connections to the service's database now (the bench's own excluded)."""
    with psycopg.connect(_pg_url(scale)) as conn:
        mine, active, clients, limit = conn.execute(_PG_COUNT).fetchone() or (0, 0, 0, 0)
    return (
        f"{mine} to the service's database ({active} active), through PgBouncer for the "
        f"workers; server-wide {clients} client connections of max_connections {limit}"
    )


class Sampler:
    """Every ``SAMPLE_S``: PostgreSQL's connections to the service's database, the load."""

    def __init__(self, pg_url: str) -> None:
        self.pg_url = pg_url
        self.peak_pg = 0
        self.peak_load = 0.0
        self.samples = 0
        self.error = ""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with psycopg.connect(self.pg_url, autocommit=True) as conn:
                while not self._stop.wait(SAMPLE_S):
                    mine = (conn.execute(_PG_COUNT).fetchone() or (0,))[0]
                    self.peak_pg = max(self.peak_pg, int(mine))
                    self.peak_load = max(self.peak_load, os.getloadavg()[0])
                    self.samples += 1
        except psycopg.Error as exc:  # the figure says the sampling stopped, and why
            self.error = f" (sampling stopped: {exc})"

    def stop(self) -> dict[str, object]:
        self._stop.set()
        self._thread.join(10)
        return {
            "postgres_connections_peak": (
                f"{self.peak_pg} to the service's database over the whole run "
                f"({self.samples} samples){self.error} ({REFERENCE['pg']})"
            ),
            "load_average_1m_peak": f"{self.peak_load:.2f} on {os.cpu_count()} cores",
        }


def _cpu_ticks(pid: int) -> int:
    with contextlib.suppress(OSError):
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    return 0


def _cpu_percent(pids: Sequence[int], window_s: float) -> list[float]:
    """Per cent of one core each process used over ``window_s`` (a sampling window)."""
    hertz = os.sysconf("SC_CLK_TCK")
    before = {pid: _cpu_ticks(pid) for pid in pids}
    t0 = time.monotonic()
    time.sleep(window_s)  # the measuring window itself, not a wait for a condition
    elapsed = time.monotonic() - t0
    return [(_cpu_ticks(pid) - before[pid]) / hertz / elapsed * 100 for pid in pids]


def _pct(ordered: Sequence[float], percent: int) -> float:
    index = min(len(ordered) - 1, max(0, round(percent / 100 * len(ordered)) - 1))
    return float(ordered[index])


def _mb(size: float) -> str:
    return f"{size / 2**20:.1f} MB"
