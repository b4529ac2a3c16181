"""The supervisor's control sockets: no frame crashes it (D24); kills and resets carry facts.

The Supervisor is built without its adapters (no database, Redis or broker):
real ZeroMQ sockets on inproc endpoints, the real receive-and-dispatch code,
and hand-written stubs for the kill switch and the database session.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any

import pytest
import zmq
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmsvc.adapters.db.commands import QueuedCommand
from mmsvc.adapters.db.records import KillFlag, RiskTrigger
from mmsvc.adapters.zmq import protocol
from mmsvc.domain.silence import LoopGap
from mmsvc.domain.state import Command
from mmsvc.processes.global_kill import Kill
from mmsvc.processes.supervisor import remote
from mmsvc.processes.supervisor.beat import RedisBeat
from mmsvc.processes.supervisor.delivery import DeliveryId
from mmsvc.processes.supervisor.lag import LagTracker
from mmsvc.processes.supervisor.main import OWN_GAP_S, Supervisor
from mmsvc.processes.supervisor.pool import WorkerPool, WorkerProcess
from mmsvc.processes.supervisor.remote import remote_identity
from mmsvc.processes.supervisor.requests import PendingRequest, all_answered
from mmsvc.processes.supervisor.router import Router

SYMBOLS = ("BTCUSDT", "ETHUSDT")


class StubKillSwitch:
    """Records what the supervisor asked of the shared kill routine."""

    def __init__(self) -> None:
        self.flags: list[Kill] = []
        self.halts: list[tuple[Kill, list[str]]] = []

    def live(self, failed: list[str]) -> dict[str, Any]:
        return {}

    def raise_flag(self, kill: Kill, live: object, failed: list[str]) -> bool:
        self.flags.append(kill)
        return True

    def halt(self, kill: Kill, symbols: list[str], live: object, failed: list[str]) -> list[str]:
        self.halts.append((kill, list(symbols)))
        return list(symbols)


class StubSession:
    """Answers the few reads the command desk makes: no kill flag, no state rows."""

    def get(self, *args: object, **kwargs: object) -> None:
        return None

    def scalars(self, *args: object) -> list[object]:
        return []

    def execute(self, *args: object) -> Any:
        raise RuntimeError("no database in unit tests")


@contextmanager
def _session() -> Iterator[StubSession]:
    yield StubSession()


class StubPool(WorkerPool):
    """The real pool's bookkeeping (silence, hello, kill) over workers that launch nothing."""

    def __init__(self, symbols: tuple[str, ...]) -> None:
        super().__init__(lambda _s: [], {}, lambda _s, _code: None, launcher=lambda _s, _a=(): None)
        self.workers = {s: WorkerProcess(s) for s in symbols}


class Settings:
    kill_switch_kafka_lag_threshold_s = 10.0
    max_symbols = 200
    shadow_mode = True


@pytest.fixture
def supervisor() -> Iterator[tuple[Supervisor, zmq.Socket[bytes], zmq.Socket[bytes]]]:
    """A Supervisor with real ROUTER sockets (workers, admin) and a DEALER on each."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    sup = Supervisor.__new__(Supervisor)
    sup.settings = Settings()  # type: ignore[assignment]
    sup.router = Router("mm-account", lambda _: None)
    sup.lag = LagTracker(10.0)
    sup.pool = StubPool(SYMBOLS)
    sup.pending, sup.last_seen, sup.connected = {}, {}, set(SYMBOLS)
    sup._own_gap = LoopGap(OWN_GAP_S)
    sup.kill_switch = StubKillSwitch()  # type: ignore[assignment]
    sup.orders = None
    sup.cancels = ThreadPoolExecutor(max_workers=1)
    sup.sessions = _session  # type: ignore[assignment]
    sup.status = None  # type: ignore[assignment]
    sup.redis_beat = RedisBeat(sup.status, lambda: None, 0.5)  # never started: no Redis
    sup.workers_ctl = ctx.socket(zmq.ROUTER)
    sup.workers_ctl.bind("inproc://workers")
    sup.admin = ctx.socket(zmq.ROUTER)
    sup.admin.bind("inproc://admin")
    worker = ctx.socket(zmq.DEALER)
    worker.setsockopt(zmq.IDENTITY, b"BTCUSDT")
    worker.connect("inproc://workers")
    admin = ctx.socket(zmq.DEALER)
    admin.connect("inproc://admin")
    yield sup, worker, admin
    sup.cancels.shutdown()
    ctx.destroy(linger=0)


def _deliver(sock: zmq.Socket[bytes], frames: list[bytes], target: zmq.Socket[bytes]) -> None:
    sock.send_multipart(frames) if frames else sock.send(b"")
    assert target.poll(1000)


def _commands_sent(sup: Supervisor, worker: zmq.Socket[bytes]) -> list[protocol.WorkerCommand]:
    sent: list[protocol.WorkerCommand] = []
    while worker.poll(50):
        message = protocol.parse_to_worker(protocol.single_frame(worker.recv_multipart()))
        if isinstance(message, protocol.WorkerCommand):
            sent.append(message)
    return sent


garbage_frames = st.lists(
    st.one_of(
        st.binary(max_size=64),
        st.sampled_from(
            [
                b"",
                b"\xff\xfe",
                b"null",
                b"[]",
                b"{}",
                b'{"t": "reply"}',
                b'{"t": "reply", "id": "x", "status": "200"}',
                b'{"t": "reply", "id": 5, "status": 200, "body": []}',
                b'{"t": "ack", "d": [["engine.event.v1", "0", 1]]}',
                b'{"t": "ack", "d": 7}',
                b'{"t": "hello", "pid": "x"}',
                b'{"cmd": "explode"}',
                b'{"cmd": "kill", "symbol": 5}',
                b'{"cmd": "ping", "args": []}',
                b'{"id": "1", "cmd": "reset", "symbol": "NOPE"}',
                b"[" * 5000,
            ]
        ),
        st.builds(
            lambda d: json.dumps(d).encode(),
            st.dictionaries(
                st.sampled_from(["t", "id", "cmd", "status", "body", "d", "symbol", "args"]),
                st.one_of(st.none(), st.integers(), st.text(max_size=8), st.lists(st.integers())),
            ),
        ),
    ),
    max_size=3,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(frames=garbage_frames)
def test_no_frame_from_a_worker_or_the_admin_crashes_the_supervisor(
    supervisor: Any,
    frames: Any,
) -> None:
    sup, worker, admin = supervisor
    _deliver(worker, frames, sup.workers_ctl)
    sup._drain_workers()
    _deliver(admin, frames, sup.admin)
    sup._drain_admin()
    while admin.poll(0):  # whatever it answered is a well-formed reply
        protocol.parse_reply(protocol.single_frame(admin.recv_multipart()))


def test_a_malformed_frame_is_counted_and_the_next_good_one_still_applies(supervisor: Any) -> None:
    sup, worker, _ = supervisor
    sup.router.tracker.consumed(DeliveryId("engine.event.v1", 0, 7), must_deliver=True)
    worker.send_multipart([b"\xff", b"two frames"])
    worker.send(b'{"t": "reply", "id": "x"}')  # a reply without a status
    worker.send(protocol.encode(protocol.Ack((("engine.event.v1", 0, 7),))))
    sup.workers_ctl.poll(1000)
    for _ in range(3):
        sup.workers_ctl.poll(200)
        sup._drain_workers()
    assert sup.router.tracker.pending_count() == 0
    assert sup.router.stats["dropped_control_frames"] == 1
    assert sup.router.stats["dropped_control_shape"] == 1


def test_an_unknown_worker_identity_is_refused(supervisor: Any) -> None:
    sup, _, _ = supervisor
    sup._on_worker_frames([b"DOGEUSDT", protocol.encode(protocol.Hello(1))])
    assert "DOGEUSDT" not in sup.connected
    assert sup.router.stats == Counter({"dropped_control_identity": 1})


def test_a_bad_admin_request_is_answered_400_with_its_id(supervisor: Any) -> None:
    sup, _, admin = supervisor
    _deliver(admin, [b'{"id": "r-1", "cmd": "explode"}'], sup.admin)
    sup._drain_admin()
    reply = protocol.parse_reply(admin.recv())
    assert (reply.id, reply.status) == ("r-1", 400)
    assert "unknown command" in reply.body["error"]["message"]


def test_a_symbol_reset_carries_the_supervisors_lag_now_to_the_worker(supervisor: Any) -> None:
    # Scenario 7: the worker's KAFKA_LAG re-check got kafka_lag_ms = 0 whatever the lag.
    sup, worker, _ = supervisor
    tp = ("engine.event.v1", 3)
    now = time.time()
    sup.lag.consumed(tp, 0, int((now - 20) * 1000), int((now - 20) * 1000), now - 20)
    sup.lag.watermark(tp, high=1, now=now - 20)  # caught up 20 s ago
    sup.lag.watermark(tp, high=9, now=now - 15)  # then stalled behind
    request = protocol.Request("r-2", Command.RESET, "BTCUSDT")
    sup._on_admin(b"admin", request)
    (sent,) = _commands_sent(sup, worker)
    assert sent.cmd is Command.RESET
    assert sent.args["kafka_lag_ms"] >= 15_000


def test_workers_silent_on_a_lag_kill_are_halted_with_kafka_lag_not_manual(supervisor: Any) -> None:
    # Scenario 7: a worker that did not answer a global KAFKA_LAG kill was recorded MANUAL.
    sup, _, _ = supervisor
    sup.connected = {"BTCUSDT"}  # ETHUSDT not connected: halted at once
    sup._global_kill(Kill(RiskTrigger.KAFKA_LAG, "engine.event.v1[3] lag 12.0s > 10s", "system"))
    pending: PendingRequest = next(iter(sup.pending.values()))
    sup._finish_if_done(pending, now=pending.deadline + 1)  # BTCUSDT never answered
    switch: StubKillSwitch = sup.kill_switch
    assert [k.trigger for k in switch.flags] == [RiskTrigger.KAFKA_LAG]
    halted = {s: k.trigger for k, symbols in switch.halts for s in symbols}
    assert halted == {"ETHUSDT": RiskTrigger.KAFKA_LAG, "BTCUSDT": RiskTrigger.KAFKA_LAG}
    assert all(k.symbol is None for k, _ in switch.halts)  # no per-symbol risk event


def test_a_worker_that_fails_a_kill_is_halted_by_the_supervisor(supervisor: Any) -> None:
    sup, _, _ = supervisor
    sup._forward(
        b"",
        protocol.Request(None, Command.KILL, "BTCUSDT", {"detail": "d"}, "ops"),
        ["BTCUSDT"],
        all_answered,
    )
    request_id = next(iter(sup.pending))
    sup._on_worker_message("BTCUSDT", protocol.Reply(request_id, 500, {}))
    switch: StubKillSwitch = sup.kill_switch
    assert [(k.trigger, k.symbol, s) for k, s in switch.halts] == [
        (RiskTrigger.MANUAL, "BTCUSDT", ["BTCUSDT"])
    ]


class FakeProc:
    """A live process that records being killed."""

    pid = 4242

    def __init__(self) -> None:
        self.killed = False

    def poll(self) -> None:
        return None

    def kill(self) -> None:
        self.killed = True


def test_a_worker_restarted_after_a_long_backoff_is_not_killed_on_sight(supervisor: Any) -> None:
    sup, _, _ = supervisor
    worker = sup.pool.workers["BTCUSDT"]
    proc = FakeProc()
    worker.proc = proc
    sup.last_seen["BTCUSDT"] = 100.0  # heard last before it was killed as silent
    worker.started_at = 130.0  # restarted after a 30 s backoff
    sup._kill_hung_workers(now=131.0)
    assert not proc.killed
    sup.pool.hello("BTCUSDT")  # D27: before HELLO a worker has the start-up grace
    for tick in range(1, 41):  # housekeeping every 0.25 s; still silent 11 s after its start
        sup._kill_hung_workers(now=131.0 + tick * 0.25)
    assert proc.killed


def test_a_supervisor_that_did_not_run_kills_no_worker_on_waking(supervisor: Any) -> None:
    """A host stopped and resumed (SIGSTOP) must not judge its workers by its own stop:
    they come back PAUSED (D29) though nothing was wrong with them (the chaos run)."""
    sup, _, _ = supervisor
    worker = sup.pool.workers["BTCUSDT"]
    proc = FakeProc()
    worker.proc = proc
    worker.started_at = 100.0
    sup.pool.hello("BTCUSDT")
    sup.last_seen["BTCUSDT"] = 100.0
    sup._kill_hung_workers(now=100.25)
    sup._kill_hung_workers(now=112.0)  # stopped 11.75 s with its host, then resumed
    assert not proc.killed
    for tick in range(1, 42):  # a worker really silent is still killed a window later
        sup._kill_hung_workers(now=112.0 + tick * 0.25)
    assert proc.killed


def test_a_command_from_another_hosts_admin_runs_through_the_same_desk(supervisor: Any) -> None:
    """D28: a commands-table row is forwarded like a control frame; its answer goes back to
    the table, never to a ZeroMQ peer."""
    sup, worker, admin = supervisor
    answers: list[tuple[bytes, tuple[int, dict[str, Any]]]] = []
    sup._answer_remote = lambda identity, answer: answers.append((identity, answer))
    queued = QueuedCommand(41, "pause", "BTCUSDT", "ops@host-b", None, {"reason": "pause"})
    sup._run_remote(queued)
    (sent,) = _commands_sent(sup, worker)
    assert (sent.cmd, sent.actor) == (Command.PAUSE, "ops@host-b")
    worker.send(protocol.encode(protocol.Reply(sent.id, 200, {"state": "PAUSED"})))
    sup.workers_ctl.poll(1000)
    sup._drain_workers()
    assert answers == [(remote_identity(41), (200, {"state": "PAUSED"}))]
    assert not admin.poll(50)


def test_a_malformed_command_row_is_answered_400_not_run(supervisor: Any) -> None:
    sup, worker, _ = supervisor
    answers: list[tuple[bytes, tuple[int, dict[str, Any]]]] = []
    sup._answer_remote = lambda identity, answer: answers.append((identity, answer))
    sup._run_remote(QueuedCommand(42, "explode", "BTCUSDT", "ops", None))
    assert [(i, a[0]) for i, a in answers] == [(remote_identity(42), 400)]
    assert _commands_sent(sup, worker) == []


def test_a_zmq_peer_cannot_pose_as_a_commands_table_row(supervisor: Any) -> None:
    sup, worker, _ = supervisor
    answers: list[object] = []
    sup._answer_remote = lambda identity, _answer: answers.append(identity)
    request = protocol.Request("1", Command.PAUSE, "BTCUSDT")
    sup._on_admin_frames([remote_identity(7), protocol.encode(request)])
    assert answers == []
    assert _commands_sent(sup, worker) == []
    assert sup.router.stats["dropped_control_identity"] == 1


class StubFlags:
    """The kill flag as PostgreSQL would answer, settable by the test."""

    flag = KillFlag(False, None, "", "system", None)

    def __init__(self, _session: object) -> None:
        pass

    def get(self) -> KillFlag:
        return StubFlags.flag


def test_a_kill_raised_on_another_host_halts_every_worker_here_once(
    supervisor: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """D28: the flag's NOTIFY (or the poll) makes this supervisor kill its own workers;
    a reset re-arms it for the next raise."""
    sup, worker, _ = supervisor
    monkeypatch.setattr(remote, "KillFlagRepository", StubFlags)
    sup._kill_followed = False
    raised = KillFlag(True, RiskTrigger.KAFKA_LAG, "lag on host-b", "system", None)
    monkeypatch.setattr(StubFlags, "flag", raised)
    sup._follow_kill_flag()
    (sent,) = _commands_sent(sup, worker)
    assert (sent.cmd, sent.args["trigger"], sent.args["global"]) == (
        Command.KILL,
        "KAFKA_LAG",
        True,
    )
    assert sup.kill_switch.flags == []  # raised elsewhere: not raised again here
    sup._follow_kill_flag()
    assert _commands_sent(sup, worker) == []  # acted on once

    monkeypatch.setattr(StubFlags, "flag", KillFlag(False, None, "reset", "ops", None))
    sup._follow_kill_flag()
    monkeypatch.setattr(StubFlags, "flag", raised)
    sup._follow_kill_flag()
    assert [c.cmd for c in _commands_sent(sup, worker)] == [Command.KILL]


def test_a_config_created_as_its_worker_starts_is_answered_at_its_hello(supervisor: Any) -> None:
    """An assignment an instant earlier started the new symbol's worker (its config row was
    there): the create must still wait for the worker's HELLO, not answer "already running"
    at once, or the operator's enable right after finds no worker (503; a fresh run saw it
    when the group join became faster than the worker template's imports)."""
    sup, _, admin = supervisor
    sup.consumer = SimpleNamespace(joined=True, numbers=list(range(6)))  # holds every number
    sup.partition_count = 6
    sup.connected.discard("BTCUSDT")  # launched (in the pool), no HELLO yet
    request = {"id": "r-9", "cmd": Command.CONFIG_CREATED.value, "symbol": "BTCUSDT"}
    _deliver(admin, [json.dumps(request).encode()], sup.admin)
    sup._drain_admin()
    assert not admin.poll(50)  # no answer before the worker runs
    sup._on_worker_frames([b"BTCUSDT", protocol.encode(protocol.Hello(1))])
    assert admin.poll(1000)
    reply = protocol.parse_reply(admin.recv())
    assert (reply.id, reply.status) == ("r-9", 201)
