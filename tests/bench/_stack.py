"""The dev stack for a benchmark: started on demand, every piece stopped even on failure.

A :class:`BenchStack` owns a temporary run directory. Whatever it starts
(broker, registry on a scratch PostgreSQL database, exchange simulator, the
service's processes) is started with a pid file there, and leaving the
``with`` block stops all of it (SIGTERM, then SIGKILL of each process group),
drops the scratch databases and removes the directory; after a failure the
logs are kept and their place is printed. Benchmarks never import pytest.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

from alembic import command
from alembic.config import Config

from mmsvc.adapters.zmq.control_client import ControlClient, SupervisorUnavailableError
from mmsvc.devstack import services, stack
from mmsvc.domain.state import Command
from tests.fixtures.waiting import wait_for

ALEMBIC_INI = Path(__file__).resolve().parents[2] / "alembic.ini"
OTHER_ACCOUNTS = ("00000000-0000-0000-0000-0000000000a1", "00000000-0000-0000-0000-0000000000a2")

# Ten instruments in the format of mmsvc/devstack/exchange/default.toml: symbol,
# kind, mid, tick, lot. Ticks are at most ~2 bps of the price, so a 5 bps
# price threshold and a 10 bps spread are meaningful on every one of them.
INSTRUMENTS: tuple[tuple[str, str, str, str, str], ...] = (
    ("BTCUSDT", "SPOT", "65000", "0.1", "0.0001"),
    ("ETHUSDT", "SPOT", "3200", "0.01", "0.001"),
    ("SOL-PERP", "PERPETUAL", "150", "0.001", "0.01"),
    ("BNBUSDT", "SPOT", "580", "0.01", "0.001"),
    ("XRPUSDT", "SPOT", "0.6", "0.0001", "1"),
    ("ADAUSDT", "SPOT", "0.45", "0.0001", "1"),
    ("DOGE-PERP", "PERPETUAL", "0.15", "0.00001", "1"),
    ("AVAXUSDT", "SPOT", "35", "0.001", "0.01"),
    ("LINK-PERP", "PERPETUAL", "18", "0.001", "0.01"),
    ("DOT-PERP", "PERPETUAL", "7", "0.001", "0.1"),
)
SYMBOLS = tuple(symbol for symbol, *_ in INSTRUMENTS)


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def exchange_toml(snapshot_interval_s: float = 5.0, **market: object) -> str:
    """A simulator config of the ten instruments; ``market`` sets their market tunables."""
    return exchange_toml_per_symbol(dict.fromkeys(SYMBOLS, market), snapshot_interval_s)


def exchange_toml_per_symbol(
    markets: Mapping[str, Mapping[str, object]], snapshot_interval_s: float = 5.0
) -> str:
    """The same config, with each instrument's market tunables from ``markets[symbol]``."""
    lines = [
        "[exchange]",
        f"snapshot_interval_s = {snapshot_interval_s!r}",
        "mark_interval_s = 1.0",
        'maker_fee_bps = "-1"',
        'taker_fee_bps = "5"',
        f"other_accounts = {_toml(OTHER_ACCOUNTS)}",
        "order_service_tokens = []",
    ]
    for symbol, kind, mid, tick, lot in INSTRUMENTS:
        base = symbol.removesuffix("-PERP").removesuffix("USDT")
        params = {
            "symbol": symbol,
            "base_asset": base,
            "quote_asset": "USDT",
            "kind": kind,
            "tick_size": tick,
            "lot_size": lot,
            "min_notional": "5",
            "mid": mid,
            "half_spread_ticks": 5,
            "levels": 10,
            "level_step_ticks": 5,
            "level_size_lots": [10, 2000],
            "trade_size_lots": [5, 500],
            "msgs_per_s": 20.0,
            "volatility_bps": 5.0,
            "jump_probability": 0.01,
            "jump_bps": 50.0,
            **markets.get(symbol, {}),
        }
        lines += ["", "[[instruments]]", *(f"{k} = {_toml(v)}" for k, v in params.items())]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True, slots=True)
class ExchangeUrls:
    """Where the exchange simulator listens."""

    order_service: str
    metadata_grpc: str
    auth: str
    admin: str


@dataclass
class BenchStack:
    """Broker, registry, simulator and service processes of one benchmark run."""

    name: str
    run_dir: Path = field(init=False)
    databases: list[str] = field(default_factory=list)
    _service: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # Set by a benchmark that stopped early without raising: its logs are kept too.
    keep_logs: bool = False

    def __post_init__(self) -> None:
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"mmsvc-bench-{self.name}-"))
        self.tag = f"{os.getpid()}_{uuid.uuid4().hex[:6]}"

    def __enter__(self) -> BenchStack:
        # SIGTERM (a CI timeout, a developer's kill) unwinds through __exit__ too.
        self._sigterm = signal.signal(signal.SIGTERM, _raise_interrupt)
        services.ensure_postgres()
        services.ensure_redis()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        signal.signal(signal.SIGTERM, self._sigterm)
        self.stop_service()
        stack.down(self.run_dir)
        for name in self.databases:
            with contextlib.suppress(Exception):  # best effort: report the real failure
                services.drop_database(services.PG_ADMIN_URL, name)
        if error is None and not self.keep_logs:
            shutil.rmtree(self.run_dir, ignore_errors=True)
        else:
            print(f"  benchmark failed; logs kept in {self.run_dir}", flush=True)

    # ------------------------------------------------------------ dev stack

    def database(self, purpose: str, migrate: bool = False) -> str:
        """A fresh scratch database (dropped on exit); migrated to head when asked."""
        name = f"mmsvc_bench_{purpose}_{self.tag}"
        self.databases.append(name)
        url = services.ensure_database(services.PG_ADMIN_URL, name, recreate=True)
        if migrate:
            config = Config(str(ALEMBIC_INI))
            config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
            config.attributes["configure_logger"] = False
            command.upgrade(config, "head")
        return url

    def broker(self) -> str:
        """A Tansu broker with every topic of CONTRACTS.md; its bootstrap address."""
        bootstrap = stack.start_broker(self.run_dir)
        stack.create_topics(bootstrap)
        return bootstrap

    def registry(self) -> str:
        """Our Schema Registry on a scratch database; its URL."""
        return stack.start_registry(self.run_dir, self.database("registry"))

    def exchange(self, bootstrap: str, registry: str, config: Path) -> ExchangeUrls:
        """The exchange simulator with the TOML ``config``, ready (schemas registered)."""
        # stack.start_exchange takes no --config; the same start, with one.
        http, auth, grpc_port, admin = (stack.free_port() for _ in range(4))
        argv = [sys.executable, "-m", "mmsvc.devstack.exchange", "--config", str(config)]
        argv += ["--kafka", bootstrap, "--registry", registry, "--http-port", str(http)]
        argv += ["--auth-port", str(auth), "--grpc-port", str(grpc_port)]
        argv += ["--admin-port", str(admin), "--log-level", "WARNING"]
        proc = stack.start_process(self.run_dir, "exchange", argv)
        stack.wait_for_port(admin, "exchange", proc, 30)
        urls = ExchangeUrls(
            f"http://127.0.0.1:{http}",
            f"127.0.0.1:{grpc_port}",
            f"http://127.0.0.1:{auth}",
            f"http://127.0.0.1:{admin}",
        )

        def ready() -> bool:
            if proc.poll() is not None:
                raise stack.StackError("exchange simulator exited; see its log")
            # A 503 raises HTTPError, an OSError.
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{urls.admin}/health", timeout=1),
            ):
                return True
            return False

        wait_for(ready, 30, "the exchange simulator")
        return urls

    # ------------------------------------------------------------- service

    def start_service(
        self, name: str, module: str, env: Mapping[str, str], args: Sequence[str] = ()
    ) -> None:
        """Start one process of the service (supervisor, outbox, gunicorn) with ``env`` added."""
        self._service[name] = stack.start_process(
            self.run_dir, name, [sys.executable, "-m", module, *args], env
        )

    def pid(self, name: str) -> int | None:
        """The pid of one service process started here, while it runs."""
        proc = self._service.get(name)
        return proc.pid if proc is not None and proc.poll() is None else None

    def stop_one(self, name: str, grace_s: float = 30.0) -> None:
        """SIGTERM one service process and wait for it (a supervisor stops its workers first)."""
        proc = self._service.pop(name, None)
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            proc.terminate()
        try:
            proc.wait(grace_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def alive(self, name: str) -> bool:
        proc = self._service.get(name)
        return proc is not None and proc.poll() is None

    def stop_service(self, grace_s: float = 30.0) -> None:
        """SIGTERM the service's processes (the supervisor stops its workers), wait."""
        for proc in self._service.values():
            with contextlib.suppress(ProcessLookupError):
                proc.terminate()
        for proc in self._service.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(grace_s)
        self._service.clear()  # anything left is killed by stack.down with its group


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def control(endpoint: str, cmd: str, symbol: str | None = None, **args: Any) -> tuple[int, Any]:
    """One request on the control channel, through the admin process's own client.

    TimeoutError while no supervisor is connected yet (it is starting).
    """
    client = _CLIENTS.setdefault(endpoint, ControlClient(endpoint, timeout_s=15))
    try:
        return client.request(Command(cmd), actor="bench", symbol=symbol, args=args)
    except SupervisorUnavailableError as exc:
        raise TimeoutError(str(exc)) from None


_CLIENTS: dict[str, ControlClient] = {}


def load_average() -> str:
    """The 1, 5 and 15 minute load averages, for the reader to judge the machine's noise."""
    return " ".join(f"{value:.2f}" for value in os.getloadavg())
