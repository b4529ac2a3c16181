"""The chaos run: disrupt three local hosts while a dozen symbols quote, record what happened.

Set-up: a dev stack of its own database (``mmsvc_chaos``, recreated), three
hosts (mmsvc.devstack.hosts) whose supervisord does not restart a killed
supervisor by itself (the driver starts it again once the takeover is done,
so the takeover by the other hosts is what gets measured), a dozen generated
instruments on the simulator, their configs created and enabled through the
API.

Then every 20-40 s one disruption, chosen at random:

- ``kill9``: SIGKILL of a host's supervisor (its workers die with it, parent-
  death signal); started again once its symbols quote elsewhere (or after
  ``RESTART_AFTER_S``);
- ``sigstop``: SIGSTOP of a host's supervisor and its workers (its process
  group: a host cut off) for 10 s, then SIGCONT;
- ``restart``: a graceful restart of a host's supervisor (supervisorctl);
- ``join`` / ``leave``: a fourth host starts, or leaves by a drain (SIGTERM).

Meanwhile a sampler records every lease epoch (owner, taken at) and every
state change from PostgreSQL. At the end the run settles (every symbol ACTIVE
and quoting, or ``SETTLE_S`` passed), the checker runs against the live
simulator and database, the hosts stop (orders canceled) and the stack goes
down. Everything lands in the data directory and bench-results/.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from sqlalchemy import Engine, create_engine, text

from mmsvc.devstack import hosts, run, services, stack
from mmsvc.devstack.hosts import Host

DATABASE = "mmsvc_chaos"
SYMBOL_COUNT = 12
HOSTS = 3
STOP_S = 10.0  # how long a SIGSTOPped host stays frozen
RESTART_AFTER_S = 45.0  # a killed supervisor is started again after its takeover, or this
SETTLE_S = 120.0
SAMPLE_S = 0.25
# A starved 2-core box answers places in more than the spec's 50 ms now and then (500 ms,
# the e2e suite's value, halted a symbol before any disruption at load 6); the run is
# about ownership, not latency, so a slow answer must not halt a symbol.
SERVICE_ENV = {"KILL_SWITCH_RESPONSE_TIMEOUT_MS": "2000", "REDIS_KEY_PREFIX": "mmsvc-chaos:"}
ACCOUNT_ID = os.environ.get("SYSTEM_ACCOUNT_ID", "00000000-0000-0000-0000-000000000001")
KINDS = ("kill9", "sigstop", "restart", "joinleave")


def now_ms() -> int:
    """Wall-clock milliseconds: the venue's clock and PostgreSQL's are the same machine's."""
    return time.time_ns() // 1_000_000


def _ms(value: Any) -> int | None:
    return None if value is None else int(value.timestamp() * 1000)


@dataclass
class Recorder:
    """The run's data directory: JSON lines appended as things happen."""

    data: Path
    lock: threading.Lock = field(default_factory=threading.Lock)

    def append(self, name: str, record: dict[str, Any]) -> None:
        """One record to ``name``.jsonl."""
        with self.lock, (self.data / f"{name}.jsonl").open("a") as out:
            out.write(json.dumps(record, sort_keys=True) + "\n")

    def write(self, name: str, value: Any) -> None:
        """``name`` as one JSON document."""
        (self.data / name).write_text(json.dumps(value, indent=2, sort_keys=True))


class Sampler(threading.Thread):
    """Every SAMPLE_S: each new lease epoch and each state change, from PostgreSQL."""

    def __init__(self, engine: Engine, recorder: Recorder) -> None:
        super().__init__(name="chaos-sampler", daemon=True)
        self.engine, self.recorder = engine, recorder
        self.stopping = threading.Event()
        self.epochs: dict[tuple[str, int], dict[str, Any]] = {}
        self.states: dict[str, tuple[str, str | None]] = {}

    def run(self) -> None:
        """Sample until stopped; a failed read is retried at the next tick."""
        while not self.stopping.wait(SAMPLE_S):
            with contextlib.suppress(Exception):  # PostgreSQL busy: the next sample catches up
                self.sample()

    def sample(self) -> None:
        """Record the leases and states that changed since the last sample."""
        with self.engine.connect() as conn:
            leases = conn.execute(
                text("SELECT symbol, owner, epoch, taken_at, lease_expires_at FROM mm_leases")
            ).all()
            states = conn.execute(text("SELECT symbol, state, trigger FROM mm_states")).all()
        for row in leases:
            key = (str(row.symbol), int(row.epoch))
            if key not in self.epochs:
                record = {
                    "symbol": key[0],
                    "epoch": key[1],
                    "owner": str(row.owner),
                    "taken_at_ms": _ms(row.taken_at),
                    "seen_ms": now_ms(),
                }
                self.epochs[key] = record
                self.recorder.append("leases", record)
        for row in states:
            value = (str(row.state), None if row.trigger is None else str(row.trigger))
            if self.states.get(str(row.symbol)) != value:
                self.states[str(row.symbol)] = value
                self.recorder.append(
                    "states",
                    {
                        "symbol": row.symbol,
                        "state": value[0],
                        "trigger": value[1],
                        "at_ms": now_ms(),
                    },
                )


class Chaos:
    """One chaos run over the local hosts, writing to ``recorder``."""

    def __init__(
        self,
        run_dir: Path,
        recorder: Recorder,
        rng: random.Random,
        say: Callable[[str], None] = print,
        kinds: tuple[str, ...] = KINDS,
    ) -> None:
        self.run_dir, self.recorder, self.rng, self.say = run_dir, recorder, rng, say
        self.kinds = kinds
        self.stack_env: dict[str, str] = {}
        self.hosts: dict[str, Host] = {}
        self.symbols: list[str] = []
        self.engine: Engine | None = None

    # --- set-up -----------------------------------------------------------------------

    def setup(self) -> None:
        """The stack on a fresh database, three hosts, a dozen symbols ACTIVE and quoting."""
        if stack.running_pids(self.run_dir) or any(
            hosts.supervisord_pid(h) for h in hosts.load(self.run_dir)
        ):
            raise stack.StackError(f"a dev stack runs under {self.run_dir}: `make stop` first")
        # Each run's hosts start with empty directories: their logs are this run's alone.
        shutil.rmtree(self.run_dir / hosts.HOSTS_DIR, ignore_errors=True)
        services.ensure_postgres()
        services.ensure_database(services.PG_ADMIN_URL, DATABASE, recreate=True)
        self.stack_env = stack.up(self.run_dir, DATABASE)
        run.migrate(self.stack_env["POSTGRES_URL"])
        self.engine = create_engine(self.stack_env["POSTGRES_URL"], pool_pre_ping=True)
        for i in range(1, HOSTS + 1):
            self.start_host(i)
        for host in self.hosts.values():
            run.wait_http(f"{host.api}/readyz", f"host {host.name}")
        self.symbols = self.generate_symbols(SYMBOL_COUNT)
        configs: dict[str, dict[str, Any]] = {s: {} for s in self.symbols}
        run.create_configs(self.hosts["h1"].api, configs)
        for symbol in self.symbols:
            run.enable_symbol(list(self.hosts.values()), symbol)
        self.wait_quoting(self.symbols, 120)

    def start_host(self, index: int) -> Host:
        """Start (or start again) host ``index``'s supervisord and remember it."""
        with _env(SERVICE_ENV):
            host = hosts.start(self.run_dir, self.stack_env, index, autorestart_supervisor=False)
        self.hosts[host.name] = host
        return host

    def generate_symbols(self, count: int) -> list[str]:
        """List ``count`` generated instruments on the simulator; their symbols."""
        answer = requests.post(
            f"{self.stack_env['EXCHANGE_ADMIN_URL']}/v1/instruments/generate",
            json={"count": count},
            timeout=30,
        )
        answer.raise_for_status()
        created: list[str] = answer.json()["created"]
        return created

    def database(self) -> Engine:
        """The run's database (after ``setup``)."""
        if self.engine is None:
            raise stack.StackError("the chaos run is not set up")
        return self.engine

    # --- what the hosts hold ------------------------------------------------------------

    def owned(self, host: str) -> dict[str, int]:
        """symbol -> epoch of every live lease ``host`` holds now."""
        return {s: epoch for s, (owner, epoch) in self.live_leases().items() if owner == host}

    def live_leases(self) -> dict[str, tuple[str, int]]:
        """symbol -> (owning host, epoch) of every live lease of the run's symbols."""
        if self.engine is None:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT symbol, owner, epoch FROM mm_leases WHERE released_at IS NULL"
                    " AND lease_expires_at > clock_timestamp()"
                )
            ).all()
        return {
            str(r.symbol): (str(r.owner).rpartition("/")[0], int(r.epoch))
            for r in rows
            if str(r.symbol) in self.symbols
        }

    def venue_open(self) -> dict[str, int]:
        """symbol -> our open orders at the venue."""
        answer = requests.get(
            f"{self.stack_env['EXCHANGE_ADMIN_URL']}/v1/orders",
            params={"account_id": ACCOUNT_ID, "status": "OPEN"},
            timeout=30,
        )
        answer.raise_for_status()
        counts: dict[str, int] = {}
        for order in answer.json()["orders"]:
            counts[order["symbol"]] = counts.get(order["symbol"], 0) + 1
        return counts

    def states(self) -> dict[str, str]:
        """symbol -> state in PostgreSQL."""
        if self.engine is None:
            return {}
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT symbol, state FROM mm_states")).all()
        return {str(r.symbol): str(r.state) for r in rows if str(r.symbol) in self.symbols}

    def quoting(self, symbols: list[str]) -> bool:
        """Every one of ``symbols`` ACTIVE with orders resting at the venue."""
        states, resting = self.states(), self.venue_open()
        return all(states.get(s) == "ACTIVE" and resting.get(s, 0) > 0 for s in symbols)

    def wait_quoting(self, symbols: list[str], timeout: float) -> bool:
        """Wait until ``symbols`` quote; False when ``timeout`` passed first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if self.quoting(symbols):
                    return True
            time.sleep(0.5)
        return False

    # --- disruptions --------------------------------------------------------------------

    def running(self) -> list[Host]:
        """The hosts whose supervisor runs now."""
        return [h for h in self.hosts.values() if hosts.program_pid(h) is not None]

    def record(
        self, kind: str, host: Host, at_ms: int, owned: dict[str, int], **extra: Any
    ) -> None:
        """One disruption, for the checker and the log."""
        states = self.states()
        # What must quote again after the disruption: the ACTIVE ones (a HALTED symbol
        # stays halted wherever it moves, a PAUSED one paused).
        active = {s: e for s, e in owned.items() if states.get(s) == "ACTIVE"}
        self.recorder.append(
            "events",
            {"kind": kind, "host": host.name, "at_ms": at_ms, "owned": owned, "active": active}
            | extra,
        )
        self.say(
            f"chaos {time.strftime('%H:%M:%S')}: {kind} {host.name} "
            f"(owned {len(owned)}: {', '.join(sorted(owned)) or '-'}) {extra or ''}"
        )

    def kill9(self, host: Host) -> None:
        """SIGKILL the supervisor; start it again once its symbols moved (or later)."""
        pid = hosts.program_pid(host)
        if pid is None:
            return
        owned = self.owned(host.name)
        at = now_ms()
        os.kill(pid, signal.SIGKILL)
        self.record("kill9", host, at, owned, pid=pid)
        deadline = time.monotonic() + RESTART_AFTER_S
        while time.monotonic() < deadline and owned and not self._moved(owned, host.name):
            time.sleep(0.5)
        hosts.supervisorctl(host, "start", hosts.SUPERVISOR)

    def _moved(self, owned: dict[str, int], victim: str) -> bool:
        """Every symbol of ``owned`` has a newer epoch on another host, quoting."""
        if self.engine is None:
            return False
        with self.engine.connect() as conn:
            rows = conn.execute(text("SELECT symbol, owner, epoch FROM mm_leases")).all()
        now = {str(r.symbol): (str(r.owner).rpartition("/")[0], int(r.epoch)) for r in rows}
        moved = all(now[s][1] > e and now[s][0] != victim for s, e in owned.items() if s in now)
        return moved and self.quoting(list(owned))

    def sigstop(self, host: Host) -> None:
        """Freeze the supervisor and its workers (its process group) for STOP_S."""
        pid = hosts.program_pid(host)
        if pid is None:
            return
        owned = self.owned(host.name)
        at = now_ms()
        os.killpg(pid, signal.SIGSTOP)
        self.record("sigstop", host, at, owned, pid=pid, seconds=STOP_S)
        try:
            time.sleep(STOP_S)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGCONT)

    def restart(self, host: Host) -> None:
        """A graceful restart: the supervisor drains (orders canceled, leases released).

        A symbol the restarted supervisor takes back itself comes back PAUSED: a
        process start pauses its symbols, only a move between hosts keeps ACTIVE
        (D29). The operator enables those again after a restart, and so does the
        run (recorded as ``enabled_again``): they are paused on purpose, and the
        rest of the run should still disrupt quoting symbols.
        """
        owned = self.owned(host.name)
        active = {s for s, state in self.states().items() if state == "ACTIVE" and s in owned}
        self.record("restart", host, now_ms(), owned)
        hosts.supervisorctl(host, "restart", hosts.SUPERVISOR)
        self.enable_again(owned, active)

    def enable_again(self, owned: dict[str, int], active: set[str]) -> None:
        """Enable the symbols of ``active`` that a restart left PAUSED under a new epoch."""
        # The new owner writes the state after it took the lease: wait for each to
        # be PAUSED or quoting, or an ACTIVE row read too early is taken for settled.
        deadline = time.monotonic() + RESTART_AFTER_S
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if self._settled(owned, active):
                    break
            time.sleep(0.5)
        states = self.states()
        paused = sorted(s for s in active if states.get(s) == "PAUSED")
        for symbol in paused:
            with contextlib.suppress(stack.StackError):
                run.enable_symbol(self.running(), symbol)
        if paused:
            self.recorder.append("enabled_again", {"at_ms": now_ms(), "symbols": paused})
            self.say(f"chaos: enabled again after the restart (D29): {', '.join(paused)}")

    def _settled(self, owned: dict[str, int], active: set[str]) -> bool:
        """Every symbol of ``owned`` retaken, and each of ``active`` PAUSED or quoting."""
        if not self._retaken(owned):
            return False
        states, resting = self.states(), self.venue_open()
        return all(
            states.get(s) == "PAUSED" or (states.get(s) == "ACTIVE" and resting.get(s, 0) > 0)
            for s in active
        )

    def _retaken(self, owned: dict[str, int]) -> bool:
        """Every symbol of ``owned`` has a newer live epoch (any owner)."""
        live = self.live_leases()
        return all(s in live and live[s][1] > e for s, e in owned.items())

    def join_or_leave(self) -> None:
        """A fourth host joins, or (when it runs) leaves by a drain."""
        fourth = self.hosts.get(hosts.host_name(HOSTS + 1))
        if fourth is not None and hosts.supervisord_pid(fourth) is not None:
            self.record("leave", fourth, now_ms(), self.owned(fourth.name))
            hosts.stop([fourth])
            return
        host = self.start_host(HOSTS + 1)
        self.record("join", host, now_ms(), {})

    def disrupt(self) -> None:
        """One disruption chosen at random among those possible now."""
        kind = self.rng.choice(self.kinds)
        if kind == "joinleave":
            self.join_or_leave()
            return
        candidates = self.running()
        if len(candidates) < 2:  # never take the last running host down
            self.join_or_leave()
            return
        victim = self.rng.choice(candidates)
        {"kill9": self.kill9, "sigstop": self.sigstop, "restart": self.restart}[kind](victim)

    def revive(self) -> None:
        """Start any supervisor that is down but should run (an unplanned exit is logged)."""
        for host in self.hosts.values():
            if hosts.supervisord_pid(host) is not None and hosts.program_pid(host) is None:
                self.say(f"chaos: {host.name}'s supervisor is down unplanned: starting it")
                self.recorder.append("unplanned", {"host": host.name, "at_ms": now_ms()})
                hosts.supervisorctl(host, "start", hosts.SUPERVISOR)

    def loop(self, minutes: float) -> None:
        """Disrupt every 20-40 s for ``minutes``."""
        end = time.monotonic() + minutes * 60
        while True:
            pause = self.rng.uniform(20, 40)
            if time.monotonic() + pause > end:
                break
            time.sleep(pause)
            self.revive()
            self.disrupt()

    # --- the end ------------------------------------------------------------------------

    def settle(self) -> dict[str, str]:
        """Let the run settle: every symbol quoting, or SETTLE_S; the final states."""
        self.revive()
        settled = self.wait_quoting(self.symbols, SETTLE_S)
        self.say(f"chaos: settled={settled} (hosts up: {[h.name for h in self.running()]})")
        return self.states()

    def teardown(self) -> int:
        """Stop every host (orders canceled), count what is left at the venue, stop the stack."""
        hosts.stop(list(self.hosts.values()))
        for host in self.hosts.values():  # the next run starts its hosts' logs afresh
            with contextlib.suppress(OSError):
                shutil.copytree(host.run_dir / "logs", self.recorder.data / "logs" / host.name)
        left = -1
        with contextlib.suppress(requests.RequestException, KeyError):
            left = sum(self.venue_open().values())
        stack.down(self.run_dir)
        if self.engine is not None:
            self.engine.dispose()
        return left


@contextlib.contextmanager
def _env(values: dict[str, str]) -> Any:
    """``values`` in os.environ for the block (the hosts' environment is built from it)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
