"""The control client against a real ZeroMQ ROUTER speaking the supervisor's admin protocol."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import zmq

from mmsvc.adapters.zmq import protocol
from mmsvc.adapters.zmq.control_client import ControlClient, SupervisorUnavailableError
from mmsvc.domain.state import Command

pytestmark = pytest.mark.integration

Handler = Callable[[dict[str, Any]], list[dict[str, Any]]]


def _json_frame(message: object) -> bytes:
    """One JSON control frame, as the protocol encodes its messages."""
    return json.dumps(message, separators=(",", ":"), default=str).encode()


class Router:
    """A ROUTER on the endpoint that answers each request with what `handler` returns."""

    def __init__(self, endpoint: str, handler: Handler) -> None:
        self.ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        self.sock = self.ctx.socket(zmq.ROUTER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.bind(endpoint)
        self.handler = handler
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            if not self.sock.poll(20):
                continue
            identity, raw = self.sock.recv_multipart()
            for reply in self.handler(json.loads(raw)):
                self.sock.send_multipart([identity, _json_frame(reply)])

    def close(self) -> None:
        self.running = False
        self.thread.join()
        self.sock.close(linger=0)
        self.ctx.term()


def echo(request: dict[str, Any]) -> list[dict[str, Any]]:
    body = {"cmd": request["cmd"], "symbol": request["symbol"], "actor": request["actor"]}
    return [{"id": request["id"], "status": 200, "body": body}]


@pytest.fixture
def endpoint(tmp_path: Path) -> str:
    return f"ipc://{tmp_path}/control-{uuid.uuid4().hex[:6]}.sock"


@pytest.fixture
def client(endpoint: str) -> Iterator[ControlClient]:
    client = ControlClient(endpoint, timeout_s=1.0, connect_timeout_s=0.3)
    yield client
    client.close()


def test_no_supervisor_is_known_at_the_send_not_after_the_reply_timeout(
    client: ControlClient,
) -> None:
    """ZMQ_IMMEDIATE refuses the send (after connect_timeout_s) instead of queueing it
    for a whole reply timeout: the error says which, so no time is asserted."""
    with pytest.raises(SupervisorUnavailableError, match="no supervisor connected"):
        client.request(Command.PING, actor="tester", timeout_s=60)


def test_an_answer_is_status_and_body_with_the_actor_carried(
    client: ControlClient, endpoint: str
) -> None:
    router = Router(endpoint, echo)
    try:
        answer = client.request(Command.PAUSE, actor="ops@tradex", symbol="BTCUSDT")
    finally:
        router.close()

    assert answer == (200, {"cmd": "pause", "symbol": "BTCUSDT", "actor": "ops@tradex"})


def test_a_silent_supervisor_times_out_and_its_late_answer_is_never_taken_for_the_next(
    client: ControlClient, endpoint: str
) -> None:
    held: list[dict[str, Any]] = []

    def late(request: dict[str, Any]) -> list[dict[str, Any]]:
        if request["cmd"] == Command.KILL:
            held.append(request)
            return []
        # Answer the held request first, as a supervisor catching up would.
        stale = [{"id": r["id"], "status": 500, "body": {}} for r in held]
        return [*stale, *echo(request)]

    router = Router(endpoint, late)
    try:
        with pytest.raises(SupervisorUnavailableError, match="did not answer within 1s"):
            client.request(Command.KILL, actor="tester")
        status, body = client.request(Command.PING, actor="tester")
    finally:
        router.close()

    assert (status, body["cmd"]) == (200, "ping")


def test_it_reconnects_to_a_restarted_supervisor(client: ControlClient, endpoint: str) -> None:
    router = Router(endpoint, echo)
    assert client.request(Command.PING, actor="tester")[0] == 200
    router.close()
    with pytest.raises(SupervisorUnavailableError):
        client.request(Command.PING, actor="tester")

    router = Router(endpoint, echo)
    try:
        assert client.request(Command.PING, actor="tester")[0] == 200
    finally:
        router.close()


def test_threads_each_get_their_own_answers(client: ControlClient, endpoint: str) -> None:
    router = Router(endpoint, echo)
    answers: dict[int, tuple[int, dict[str, Any]]] = {}

    def ask(n: int) -> None:
        answers[n] = client.request(Command.STATUS, actor=f"t{n}", symbol=f"S{n:02d}")

    threads = [threading.Thread(target=ask, args=(n,)) for n in range(16)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        router.close()

    assert {n: body["actor"] for n, (_, body) in answers.items()} == {n: f"t{n}" for n in range(16)}


def test_over_tcp_only_a_client_with_the_curve_keys_is_answered(tmp_path: Path) -> None:
    import zmq.auth  # noqa: PLC0415 - only this test makes keys

    from mmsvc.devstack.stack import free_port  # noqa: PLC0415

    zmq.auth.create_certificates(tmp_path, "server")
    zmq.auth.create_certificates(tmp_path, "client")
    endpoint = f"tcp://127.0.0.1:{free_port()}"
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    router = ctx.socket(zmq.ROUTER)
    router.setsockopt(zmq.LINGER, 0)
    protocol.bind_control(router, endpoint, tmp_path)
    keyed = ControlClient(endpoint, timeout_s=2.0, curve_dir=tmp_path)
    stranger = ctx.socket(zmq.DEALER)
    stranger.setsockopt(zmq.LINGER, 0)
    stranger.connect(endpoint)  # no keys: the CURVE handshake fails, nothing arrives
    try:
        stranger.send(b'{"id": "s", "cmd": "kill", "actor": "intruder"}')
        answered = threading.Thread(target=lambda: _answer_one(router), daemon=True)
        answered.start()
        status, _ = keyed.request(Command.PING, actor="tester")
        answered.join(2)
        assert status == 200
        assert not router.poll(300), "a client without keys got a message through"
    finally:
        keyed.close()
        ctx.destroy(linger=0)


def _answer_one(router: zmq.Socket[bytes]) -> None:
    if router.poll(2000):
        identity, raw = router.recv_multipart()
        request = protocol.parse_request(raw)
        router.send_multipart([identity, protocol.encode(protocol.Reply(request.id, 200, {}))])
