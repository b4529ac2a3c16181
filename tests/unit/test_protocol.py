"""The control channel's typed messages: every kind round-trips; a malformed frame is refused."""

from __future__ import annotations

import pytest

from mmsvc.adapters.zmq import protocol
from mmsvc.adapters.zmq.protocol import ProtocolError
from mmsvc.domain.state import Command


@pytest.mark.parametrize(
    "message",
    [
        protocol.Hello(42),
        protocol.Heartbeat(),
        protocol.Ack((("engine.event.v1", 3, 17),)),
        protocol.Reply("r-1", 409, {"error": {"code": "X", "message": "y"}}),
    ],
)
def test_what_a_worker_sends_round_trips(message: protocol.FromWorker) -> None:
    assert protocol.parse_from_worker(protocol.encode(message)) == message


def test_a_command_and_a_request_round_trip() -> None:
    command = protocol.WorkerCommand("c-1", Command.RESET, {"kafka_lag_ms": 1500}, "ops")
    assert protocol.parse_to_worker(protocol.encode(command)) == command
    request = protocol.Request("r-1", Command.KILL, None, {}, "ops", "drill")
    assert protocol.parse_request(protocol.encode(request)) == request


def test_the_request_wire_format_is_unchanged() -> None:
    raw = b'{"id":"r","cmd":"enable","symbol":"BTCUSDT","args":{},"actor":"a","reason":null}'
    assert protocol.parse_request(raw) == protocol.Request("r", Command.ENABLE, "BTCUSDT", {}, "a")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"\xff\xfe", "utf8"),
        (b"{", "json"),
        (b"[1, 2]", "shape"),
        (b'{"t": "reply", "id": "x"}', "shape"),  # a reply without a status
        (b'{"t": "reply", "id": "x", "status": true}', "shape"),
        (b'{"t": "reply", "id": "x", "status": 200, "body": [1]}', "shape"),
        (b'{"t": "ack", "d": [["engine.event.v1", "3", 1]]}', "shape"),
        (b'{"t": "boom"}', "kind"),
    ],
)
def test_a_malformed_frame_from_a_worker_is_refused_with_its_reason(
    raw: bytes, reason: str
) -> None:
    with pytest.raises(ProtocolError) as refused:
        protocol.parse_from_worker(raw)
    assert refused.value.reason == reason


@pytest.mark.parametrize(
    "raw",
    [b'{"cmd": "explode"}', b'{"cmd": "kill", "symbol": 5}', b'{"cmd": "ping", "args": [1]}'],
)
def test_a_malformed_admin_request_is_refused(raw: bytes) -> None:
    with pytest.raises(ProtocolError):
        protocol.parse_request(raw)


def test_frame_counts_are_checked() -> None:
    with pytest.raises(ProtocolError, match="expected 1 frame"):
        protocol.single_frame([b"a", b"b"])
    with pytest.raises(ProtocolError, match="identity"):
        protocol.routed([b"id", b"a", b"b"])
    with pytest.raises(ProtocolError, match="2 frames"):
        protocol.unpack_data([b"topic", b"value"])
