"""Forked workers (ARCHITECTURE D27): a template process forks each worker.

A fresh interpreter per worker costs about 75 MB of private memory and
seconds of imports under load. Instead the supervisor starts one template
process that imports the worker's modules (Kafka, SQLAlchemy, ZeroMQ, gRPC,
pydantic...), opens no socket, connection or thread, freezes its objects out
of the garbage collector (``gc.freeze()``, so collections in a child do not
touch, and so copy, the shared pages) and then forks a worker per request.

The protocol, one JSON line each way on a socket pair: the supervisor sends
``{"fork": SYMBOL}``, the template answers ``{"pid": N}`` or ``{"error": ...}``;
it says ``{"ready": true}`` once, when its imports are done.

Each worker is forked twice (template, a middle process that exits at once,
the worker), so that it is adopted by the supervisor, which is a child
subreaper (``PR_SET_CHILD_SUBREAPER``): the supervisor reaps it with
``waitpid`` like any child and learns of its death at once, so a dead worker's
orders are canceled first as ever (D2). Once adopted, the worker asks for
SIGTERM when its parent, the supervisor, dies and checks that the supervisor
is still its parent (D17's parent-death rule), re-seeds ``random`` and runs the
worker's ``main``. If the template dies it is started again; if it cannot be
used (no subreaper, no readiness within ``TEMPLATE_READY_S``, a failed fork),
workers are started as fresh interpreters, with a log line saying so.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import ctypes.util
import gc
import importlib
import json
import logging
import os
import random
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

import requests
from confluent_kafka.schema_registry import SchemaRegistryClient
from requests.adapters import HTTPAdapter
from sqlalchemy.orm import configure_mappers

from mmsvc.adapters.db.engine import make_worker_engine
from mmsvc.processes.supervisor.pool import ChildProcess
from mmsvc.processes.worker.fence import die_with_parent

log = logging.getLogger(__name__)

TEMPLATE_READY_S = 60.0  # imports under load; after this, fresh interpreters
RETRY_AFTER_S = 30.0  # an unusable template is tried again after this
FORK_REPLY_S = 10.0  # a fork takes milliseconds; silence this long means a broken template
ADOPT_WAIT_S = 5.0  # the middle process exits at once; the worker waits this long for it
WORKER_MODULE = "mmsvc.processes.worker.main"
EXIT_NOT_ADOPTED = 6  # the supervisor did not adopt the forked worker: it must not run
_PR_SET_CHILD_SUBREAPER = 36
_UNKNOWN_EXIT = 255
# What a worker imports lazily, on first use, found by comparing a forked worker's
# sys.modules with the template's (issue 13): imported once here, they are shared;
# imported after the fork, they are private to each of 200 workers (psycopg alone
# about 10 MB of each worker's USS).
LAZY_IMPORTS = (
    "psycopg",  # the driver, which SQLAlchemy's dialect imports at create_engine
    "psycopg.types.json",
    "psycopg.types.numeric",
    "psycopg.types.range",
    "psycopg.types.multirange",
    "psycopg.types.net",
    "psycopg.types.uuid",
    "psycopg.types.numpy",
    "psycopg_binary",
    "sqlalchemy.dialects.postgresql.psycopg",
    "grpc._channel",  # on the first channel (the Metadata Service)
    "grpc._simple_stubs",
    "grpc.experimental",
    "httpcore2",  # the schema registry client's HTTP stack, on its first request
    "h11",
    "anyio.streams.tls",
    "anyio.to_thread",
    "truststore",
)


def become_subreaper() -> bool:
    """Make orphaned descendants children of this process (Linux 3.4+); False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    return bool(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)


class ForkedChild:
    """A worker forked by the template and adopted by this process: reaped with ``waitpid``."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        """The exit code once the worker has exited (and is reaped), else None."""
        if self.returncode is None:
            try:
                pid, status = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                log.error("forked worker is not our child", extra={"worker_pid": self.pid})
                self.returncode = _UNKNOWN_EXIT
            else:
                if pid == self.pid:
                    self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit; ``subprocess.TimeoutExpired`` after ``timeout``, as ``Popen``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout or 0.0)
            time.sleep(0.01)
        return code

    def send_signal(self, sig: int) -> None:
        """Signal the worker unless it is already reaped (its pid may be someone else's)."""
        if self.poll() is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class WorkerTemplate:
    """The supervisor's handle on the template: a pool launcher that forks, or falls back."""

    def __init__(
        self,
        env: Mapping[str, str],
        fresh: Callable[[str, Sequence[str]], ChildProcess],
        clock: Callable[[], float] = time.monotonic,
        module: str = WORKER_MODULE,
    ) -> None:
        self._env = dict(env)
        self._module = module  # whose ``main(argv)`` a forked worker runs
        self._fresh = fresh
        self._clock = clock
        self._proc: subprocess.Popen[bytes] | None = None
        self._sock: socket.socket | None = None
        self._buffer = b""
        self._started_at = 0.0
        self._ready = False
        self._disabled_until = float("-inf")
        self._subreaper: bool | None = None

    @property
    def ready(self) -> bool:
        return self._ready

    def start(self) -> bool:
        """Start the template process (returns at once); False when forking cannot be used."""
        if self._subreaper is None:
            self._subreaper = become_subreaper()
            if not self._subreaper:
                log.error("cannot become a child subreaper: workers start as fresh interpreters")
        if not self._subreaper:
            return False
        self.close()
        ours, theirs = socket.socketpair()
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                __name__,
                str(theirs.fileno()),
                str(os.getpid()),
                self._module,
            ],
            env=self._env,
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self._sock = ours
        self._buffer = b""
        self._ready = False
        self._started_at = self._clock()
        log.info("worker template starting", extra={"template_pid": self._proc.pid})
        return True

    def __call__(self, symbol: str, args: Sequence[str] = ()) -> ChildProcess | None:
        """Fork the symbol's worker (with the worker's extra ``args``); None while the
        template imports; a fresh interpreter if it is unusable."""
        now = self._clock()
        if now < self._disabled_until or self._subreaper is False:
            return self._fresh(symbol, args)
        if self._proc is not None and self._proc.poll() is not None:
            if not self._ready:
                why = f"template exited with {self._proc.returncode}"
                return self._give_up(symbol, args, why)
            log.error(
                "worker template died; starting it again",
                extra={"exit_code": self._proc.returncode},
            )
            self.close()
        if self._proc is None:
            return None if self.start() else self._fresh(symbol, args)
        if not self._ready:
            return self._await_ready(symbol, args, now)
        return self._fork(symbol, args)

    def _fork(self, symbol: str, args: Sequence[str]) -> ChildProcess:
        try:
            self._send({"fork": symbol, "args": list(args)})
            reply = self._receive(FORK_REPLY_S)
        except OSError as exc:
            return self._give_up(symbol, args, f"fork request failed: {exc}")
        if reply is None or "pid" not in reply:
            return self._give_up(symbol, args, f"fork refused: {reply}")
        return ForkedChild(int(reply["pid"]))

    def close(self) -> None:
        """Stop the template (forked workers are not its children: they live on)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._proc is not None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()
            self._proc.wait()
            self._proc = None
        self._ready = False

    def _await_ready(self, symbol: str, args: Sequence[str], now: float) -> ChildProcess | None:
        try:
            reply = self._receive(0.0)
        except OSError as exc:
            return self._give_up(symbol, args, f"template lost while starting: {exc}")
        if reply is not None and reply.get("ready"):
            self._ready = True
            log.info(
                "worker template ready",
                extra={"template_pid": self.pid, "import_s": round(now - self._started_at, 2)},
            )
            return self(symbol, args)
        if reply is not None:
            return self._give_up(symbol, args, f"template unusable: {reply}")
        if now - self._started_at > TEMPLATE_READY_S:
            why = f"template not ready within {TEMPLATE_READY_S:g}s"
            return self._give_up(symbol, args, why)
        return None

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    def _give_up(self, symbol: str, args: Sequence[str], why: str) -> ChildProcess:
        log.error(
            "worker template unusable; starting workers as fresh interpreters",
            extra={"reason": why, "retry_after_s": RETRY_AFTER_S},
        )
        self.close()
        self._disabled_until = self._clock() + RETRY_AFTER_S
        return self._fresh(symbol, args)

    def _send(self, message: dict[str, Any]) -> None:
        if self._sock is None:
            raise OSError("no template socket")
        self._sock.sendall(json.dumps(message).encode() + b"\n")

    def _receive(self, timeout_s: float) -> dict[str, Any] | None:
        """One reply line, or None when none came within ``timeout_s``; OSError at EOF."""
        if self._sock is None:
            raise OSError("no template socket")
        deadline = time.monotonic() + timeout_s
        while b"\n" not in self._buffer:
            left = max(0.0, deadline - time.monotonic())
            readable, _, _ = select.select([self._sock], [], [], left)
            if not readable:
                return None
            chunk = self._sock.recv(65536)
            if not chunk:
                raise OSError("the template closed its socket")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        reply = json.loads(line)
        if not isinstance(reply, dict):
            raise OSError(f"a malformed template reply: {line!r}")
        return reply


# ------------------------------------------------------------ the template itself


def main(argv: list[str] | None = None) -> None:
    """``python -m mmsvc.processes.supervisor.template FD SUPERVISOR_PID MODULE`` (supervisor's)."""
    fd_arg, supervisor_arg, module = argv if argv is not None else sys.argv[1:4]
    supervisor_pid = int(supervisor_arg)
    die_with_parent(signal.SIGKILL)
    if os.getppid() != supervisor_pid:
        sys.exit(1)  # the supervisor died before the parent-death signal was armed
    gc.disable()  # no collection may dirty the pages the workers will share
    worker_main = importlib.import_module(module)
    _preload()
    gc.freeze()
    channel = socket.socket(fileno=int(fd_arg))
    if threading.active_count() != 1:
        _reply(channel, {"error": f"{threading.active_count()} threads after imports"})
        sys.exit(1)
    _reply(channel, {"ready": True})
    with channel.makefile("rb") as requests:
        for line in requests:
            request = json.loads(line)
            symbol, args = str(request["fork"]), [str(a) for a in request.get("args", [])]
            try:
                pid = _fork_worker(symbol, args, supervisor_pid, channel, worker_main.main)
            except OSError as exc:
                _reply(channel, {"error": str(exc)})
            else:
                _reply(channel, {"pid": pid})


_NOWHERE = "http://127.0.0.1:1/"  # built against, never connected to


def _preload() -> None:
    """Build once, before the fork, what every worker would otherwise build for itself.

    No socket and no thread (the template checks): modules a worker imports
    lazily, SQLAlchemy's mapper configuration (done at the first query
    otherwise), an engine's dialect (its type maps and caches) and the HTTP
    clients, never connected. The code they run once here (type attribute
    caches, first-call set-up) then stays on pages every worker shares; what a
    worker runs for the first time after the fork dirties its own copies.
    """
    for name in LAZY_IMPORTS:
        with contextlib.suppress(ImportError):  # an optional piece of a dependency
            importlib.import_module(name)
    configure_mappers()
    make_worker_engine("postgresql://template@localhost/template", application_name="template")
    # Clients every worker builds at start-up, built once here and dropped: neither
    # connects before its first request. Measured on a fork: a worker's registry
    # client costs 6.4 MB of private memory cold, 3.4 MB once built here; its first
    # Order Service request 4.6 MB cold, 3.6 MB once prepared here.
    SchemaRegistryClient({"url": _NOWHERE})
    with requests.Session() as session:
        order = session.prepare_request(requests.Request("POST", _NOWHERE, json={"a": "1"}))
        session.merge_environment_settings(order.url, {}, None, None, None)
        adapter = session.get_adapter(_NOWHERE)
        if isinstance(adapter, HTTPAdapter):
            adapter.get_connection_with_tls_context(order, verify=True)


def _reply(channel: socket.socket, message: dict[str, Any]) -> None:
    channel.sendall(json.dumps(message).encode() + b"\n")


def _fork_worker(
    symbol: str,
    args: list[str],
    supervisor_pid: int,
    channel: socket.socket,
    run: Callable[[list[str]], None],
) -> int:
    """Fork twice so the worker is orphaned at once and adopted by the supervisor; its pid."""
    read_end, write_end = os.pipe()
    middle = os.fork()
    if middle == 0:
        code = 1
        try:
            os.close(read_end)
            pid = os.fork()
            if pid == 0:
                os.close(write_end)
                _become_worker(["--symbol", symbol, *args], supervisor_pid, channel, run)
            os.write(write_end, str(pid).encode())
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)
    chunks = []
    while chunk := os.read(read_end, 64):
        chunks.append(chunk)
    os.close(read_end)
    os.waitpid(middle, 0)  # once it is reaped, the worker is the supervisor's child
    if not chunks:
        raise OSError(f"forking the worker of {symbol} failed")
    return int(b"".join(chunks))


def _become_worker(
    argv: list[str],
    supervisor_pid: int,
    channel: socket.socket,
    run: Callable[[list[str]], None],
) -> NoReturn:
    """The forked worker: a clean slate, the supervisor as its parent, then the worker's main."""
    code: int = 1
    try:
        channel.close()
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGCHLD):
            signal.signal(sig, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        deadline = time.monotonic() + ADOPT_WAIT_S
        while os.getppid() != supervisor_pid:  # the middle process is exiting
            if time.monotonic() > deadline:
                os._exit(EXIT_NOT_ADOPTED)
            time.sleep(0.001)
        die_with_parent(signal.SIGTERM)  # D17: the parent is the supervisor now
        if os.getppid() != supervisor_pid:
            os._exit(EXIT_NOT_ADOPTED)  # the supervisor died before the signal was armed
        random.seed()
        gc.enable()
        sys.argv = ["mmsvc-worker", *argv]
        run(argv)
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException as exc:  # noqa: BLE001 - logged as the interpreter would, then exit 1
        sys.excepthook(type(exc), exc, exc.__traceback__)
    finally:
        atexit._run_exitfuncs()  # what a normal interpreter exit runs
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        os._exit(code)


if __name__ == "__main__":
    main()
