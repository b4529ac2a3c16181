"""Wire format between the supervisor, its workers and the admin process.

Two kinds of traffic:

* Data (supervisor PUSH -> worker PULL): the Kafka message untouched, as three
  frames ``[topic, value, meta]``. The supervisor never decodes market data
  (ARCHITECTURE D14); ``meta`` carries the Kafka position so the worker can
  acknowledge a must-deliver message (D1).
* Control (DEALER <-> ROUTER): one small JSON object per message, typed here
  as a frozen dataclass per kind. Commands carry an ``id`` so replies can be
  matched when several are in flight; their names are the domain's
  :class:`~mmsvc.domain.state.Command`, the one vocabulary of the service.

Every frame that arrives is untrusted (D24): the parsers below turn bytes into
one of the typed messages or raise :class:`ProtocolError` with the reason, which
the receiving loop counts and skips; no frame can crash a process.
"""

from __future__ import annotations

import json
import os
import stat
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

import zmq
import zmq.auth

from mmsvc.domain.state import Command

_META = struct.Struct(">iqq?")

Body = dict[str, Any]


class Kind(StrEnum):
    """The control message kinds (JSON field ``t``)."""

    HELLO = "hello"  # worker -> supervisor, once connected
    ACK = "ack"  # worker -> supervisor: must-deliver messages processed
    HEARTBEAT = "hb"  # both ways
    COMMAND = "cmd"  # supervisor -> worker
    REPLY = "reply"  # worker -> supervisor


class ProtocolError(ValueError):
    """A frame that is not a valid control message; the receiver counts it and skips it."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason  # a short label for counters: frames, utf8, json, shape, ...


# ------------------------------------------------------------------- messages


@dataclass(frozen=True, slots=True)
class Hello:
    """A worker connected (or reconnected) to the supervisor."""

    pid: int | None = None


@dataclass(frozen=True, slots=True)
class Heartbeat:
    """A sign of life, both ways."""


@dataclass(frozen=True, slots=True)
class Ack:
    """Must-deliver messages a worker processed: (topic, partition, offset) each (D1)."""

    deliveries: tuple[tuple[str, int, int], ...]


@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP-like answer: a worker's to the supervisor, or the supervisor's to the admin."""

    id: str | None
    status: int
    body: Body = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class WorkerCommand:
    """A command the supervisor forwards to one worker."""

    id: str
    cmd: Command
    args: Body = field(default_factory=dict)
    actor: str = "system"


@dataclass(frozen=True, slots=True)
class Request:
    """A command the admin process sends to the supervisor (no ``t`` field on the wire)."""

    id: str | None
    cmd: Command
    symbol: str | None = None
    args: Body = field(default_factory=dict)
    actor: str = "system"
    reason: str | None = None


FromWorker = Hello | Heartbeat | Ack | Reply
ToWorker = Heartbeat | WorkerCommand
Message = Hello | Heartbeat | Ack | Reply | WorkerCommand | Request


# ------------------------------------------------------------------- encoding


def encode(message: Message) -> bytes:
    """One control message as its JSON frame; decimals and other values become strings."""
    return _dumps(_as_dict(message))


def _as_dict(message: Message) -> dict[str, Any]:
    if isinstance(message, Hello):
        return {"t": Kind.HELLO, "pid": message.pid}
    if isinstance(message, Heartbeat):
        return {"t": Kind.HEARTBEAT}
    if isinstance(message, Ack):
        return {"t": Kind.ACK, "d": [list(d) for d in message.deliveries]}
    if isinstance(message, Reply):
        return {"t": Kind.REPLY, "id": message.id, "status": message.status, "body": message.body}
    if isinstance(message, WorkerCommand):
        return {
            "t": Kind.COMMAND,
            "id": message.id,
            "cmd": message.cmd,
            "args": message.args,
            "actor": message.actor,
        }
    return {
        "id": message.id,
        "cmd": message.cmd,
        "symbol": message.symbol,
        "args": message.args,
        "actor": message.actor,
        "reason": message.reason,
    }


def _dumps(message: Mapping[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":"), default=str).encode()


# -------------------------------------------------------------------- parsing


def single_frame(frames: Sequence[bytes]) -> bytes:
    """The one frame of a DEALER's message; ProtocolError for any other count."""
    if len(frames) != 1:
        raise ProtocolError("frames", f"expected 1 frame, got {len(frames)}")
    return bytes(frames[0])


def routed(frames: Sequence[bytes]) -> tuple[bytes, bytes]:
    """(identity, payload) of a message a ROUTER received; ProtocolError unless two frames."""
    if len(frames) != 2:
        raise ProtocolError("frames", f"expected identity and 1 frame, got {len(frames)} frames")
    return bytes(frames[0]), bytes(frames[1])


def parse_from_worker(raw: bytes) -> FromWorker:
    """What a worker sent the supervisor: hello, heartbeat, ack or reply."""
    obj = _object(raw)
    kind = obj.get("t")
    if kind == Kind.HEARTBEAT:
        return Heartbeat()
    if kind == Kind.ACK:
        return Ack(_deliveries(obj.get("d")))
    if kind == Kind.REPLY:
        return _reply(obj)
    if kind == Kind.HELLO:
        pid = obj.get("pid")
        return Hello(pid if _is_int(pid) else None)
    raise ProtocolError("kind", f"unknown message kind from a worker: {kind!r}")


def parse_to_worker(raw: bytes) -> ToWorker:
    """What the supervisor sent a worker: heartbeat or command."""
    obj = _object(raw)
    kind = obj.get("t")
    if kind == Kind.HEARTBEAT:
        return Heartbeat()
    if kind == Kind.COMMAND:
        request_id = obj.get("id")
        if not isinstance(request_id, str):
            raise ProtocolError("shape", "a command needs a string id")
        return WorkerCommand(
            request_id, _command(obj.get("cmd")), _args(obj.get("args")), _actor(obj.get("actor"))
        )
    raise ProtocolError("kind", f"unknown message kind for a worker: {kind!r}")


def parse_request(raw: bytes) -> Request:
    """An admin request: a known command, an optional symbol, args an object."""
    obj = _object(raw)
    request_id, symbol, reason = obj.get("id"), obj.get("symbol"), obj.get("reason")
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError("shape", "id must be a string")
    if symbol is not None and not isinstance(symbol, str):
        raise ProtocolError("shape", "symbol must be a string or null")
    if reason is not None and not isinstance(reason, str):
        raise ProtocolError("shape", "reason must be a string or null")
    return Request(
        request_id,
        _command(obj.get("cmd")),
        symbol,
        _args(obj.get("args")),
        _actor(obj.get("actor")),
        reason,
    )


def parse_reply(raw: bytes) -> Reply:
    """The supervisor's answer to the admin process."""
    return _reply(_object(raw))


def request_id_of(raw: bytes) -> str | None:
    """The id of a request that failed to parse, if one can be read, to answer it."""
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    request_id = value.get("id") if isinstance(value, dict) else None
    return request_id if isinstance(request_id, str) else None


def _object(raw: bytes) -> dict[str, Any]:
    try:
        text = bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("utf8", f"control frame is not UTF-8: {exc.reason}") from None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError("json", f"control frame is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ProtocolError("shape", "control message is not a JSON object")
    return value


def _reply(obj: Mapping[str, Any]) -> Reply:
    request_id, status, body = obj.get("id"), obj.get("status"), obj.get("body", {})
    if request_id is not None and not isinstance(request_id, str):
        raise ProtocolError("shape", "reply id must be a string or null")
    if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
        raise ProtocolError("shape", f"reply without a valid status: {status!r}")
    if not isinstance(body, dict):
        raise ProtocolError("shape", "reply body must be an object")
    return Reply(request_id, status, body)


def _command(value: object) -> Command:
    try:
        if not isinstance(value, str):
            raise ValueError(value)
        return Command(value)
    except ValueError:
        raise ProtocolError("command", f"unknown command {value!r}") from None


def _args(value: object) -> Body:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ProtocolError("shape", "args must be an object")
    return value


def _actor(value: object) -> str:
    if value is None:
        return "system"
    if not isinstance(value, str):
        raise ProtocolError("shape", "actor must be a string")
    return value


def _deliveries(value: object) -> tuple[tuple[str, int, int], ...]:
    if not isinstance(value, list):
        raise ProtocolError("shape", "ack needs a list of [topic, partition, offset]")
    deliveries: list[tuple[str, int, int]] = []
    for item in value:
        if not (
            isinstance(item, list)
            and len(item) == 3
            and isinstance(item[0], str)
            and _is_int(item[1])
            and _is_int(item[2])
        ):
            raise ProtocolError("shape", f"malformed delivery in ack: {item!r}")
        deliveries.append((item[0], item[1], item[2]))
    return tuple(deliveries)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# ----------------------------------------------------------------------- data


@dataclass(frozen=True, slots=True)
class DataFrame:
    """One Kafka message as a worker receives it."""

    topic: str
    value: bytes
    partition: int
    offset: int
    ts_ms: int
    must_ack: bool


def pack_data(
    topic: bytes, value: bytes, partition: int, offset: int, ts_ms: int, must_ack: bool
) -> list[bytes]:
    """Frames for one data message; ``topic`` is pre-encoded by the caller."""
    return [topic, value, _META.pack(partition, offset, ts_ms, must_ack)]


def unpack_data(frames: Sequence[bytes]) -> DataFrame:
    """Inverse of :func:`pack_data`; ProtocolError (a ValueError) on a malformed message."""
    if len(frames) != 3 or len(frames[2]) != _META.size:
        raise ProtocolError("frames", f"malformed data message: {len(frames)} frames")
    partition, offset, ts_ms, must_ack = _META.unpack(frames[2])
    try:
        topic = bytes(frames[0]).decode()
    except UnicodeDecodeError:
        raise ProtocolError("utf8", "data message topic is not UTF-8") from None
    return DataFrame(topic, bytes(frames[1]), partition, offset, ts_ms, must_ack)


# ------------------------------------------------------------------ endpoints


def data_endpoint(socket_dir: Path, symbol: str) -> str:
    """The IPC endpoint the supervisor pushes a symbol's data to."""
    return f"ipc://{socket_dir / symbol}.data"


def worker_control_endpoint(socket_dir: Path) -> str:
    """The supervisor's ROUTER that every worker's DEALER connects to."""
    return f"ipc://{socket_dir / 'workers.ctl'}"


# ------------------------------------------------------------------- security
# D24: control endpoints are ipc:// sockets in a directory only this user can
# enter (0700; supervisord.conf's umask keeps new files private too), or tcp://
# with CURVE: the server's keys in MMSVC_CONTROL_CURVE_DIR as server.key_secret,
# a client's as client.key_secret beside the server's public server.key
# (zmq.auth.create_certificates writes both). config.py refuses tcp:// without it.


def private_dir(path: Path) -> Path:
    """Create ``path`` (0700) or tighten it to 0700; refuse one another user owns."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.stat()
    if info.st_uid != os.getuid():
        raise PermissionError(f"{path} belongs to uid {info.st_uid}, not to this user")
    if stat.S_IMODE(info.st_mode) != 0o700:
        path.chmod(0o700)
    return path


def _ipc_dir(endpoint: str) -> Path | None:
    return Path(endpoint.removeprefix("ipc://")).parent if endpoint.startswith("ipc://") else None


def bind_control(sock: zmq.Socket[bytes], endpoint: str, curve_dir: Path | None = None) -> None:
    """Bind a control ROUTER: ipc:// in a private directory, tcp:// only as a CURVE server."""
    directory = _ipc_dir(endpoint)
    if directory is not None:
        private_dir(directory)
    elif endpoint.startswith("tcp://"):
        if curve_dir is None:
            raise ValueError(f"{endpoint}: tcp:// control needs CURVE keys (D24)")
        _, secret = zmq.auth.load_certificate(curve_dir / "server.key_secret")
        sock.curve_server = True
        sock.curve_secretkey = secret
    sock.bind(endpoint)


def connect_control(sock: zmq.Socket[bytes], endpoint: str, curve_dir: Path | None = None) -> None:
    """Connect a control DEALER; over tcp:// as a CURVE client of the supervisor."""
    if endpoint.startswith("tcp://"):
        if curve_dir is None:
            raise ValueError(f"{endpoint}: tcp:// control needs CURVE keys (D24)")
        public, secret = zmq.auth.load_certificate(curve_dir / "client.key_secret")
        server, _ = zmq.auth.load_certificate(curve_dir / "server.key")
        sock.curve_publickey = public
        sock.curve_secretkey = secret
        sock.curve_serverkey = server
    sock.connect(endpoint)
