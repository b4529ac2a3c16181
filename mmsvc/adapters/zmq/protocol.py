"""Wire format between the supervisor, its workers and the admin process.

Two kinds of traffic:

* Data (supervisor PUSH -> worker PULL): the Kafka message untouched, as three
  frames ``[topic, value, meta]``. The supervisor never decodes market data
  (ARCHITECTURE D14); ``meta`` carries the Kafka position so the worker can
  acknowledge a must-deliver message (D1).
* Control (DEALER <-> ROUTER): small JSON objects. Commands carry an ``id`` so
  replies can be matched when several are in flight.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_META = struct.Struct(">iqq?")

# Control message types (field "t").
HELLO = "hello"  # worker -> supervisor, once connected
ACK = "ack"  # worker -> supervisor: must-deliver messages processed
HEARTBEAT = "hb"  # both ways; the worker's carries its live status
COMMAND = "cmd"  # supervisor -> worker
REPLY = "reply"  # worker -> supervisor

# Commands (admin -> supervisor -> worker).
ENABLE = "enable"
PAUSE = "pause"
RESUME = "resume"
KILL = "kill"
RESET = "reset"
FLATTEN = "flatten"
STATUS = "status"
CONFIG_CHANGED = "config_changed"
CONFIG_CREATED = "config_created"
CONFIG_DELETED = "config_deleted"
PING = "ping"


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
    """Inverse of :func:`pack_data`; raises ValueError on a malformed message."""
    if len(frames) != 3 or len(frames[2]) != _META.size:
        raise ValueError(f"malformed data message: {len(frames)} frames")
    partition, offset, ts_ms, must_ack = _META.unpack(frames[2])
    return DataFrame(
        bytes(frames[0]).decode(), bytes(frames[1]), partition, offset, ts_ms, must_ack
    )


def dumps(message: Mapping[str, Any]) -> bytes:
    """Encode a control message; decimals and other values become strings."""
    return json.dumps(message, separators=(",", ":"), default=str).encode()


def loads(data: bytes) -> dict[str, Any]:
    """Decode a control message; raises ValueError when it is not a JSON object."""
    message = json.loads(data)
    if not isinstance(message, dict):
        raise ValueError("control message is not a JSON object")
    return message


def data_endpoint(socket_dir: Path, symbol: str) -> str:
    """The IPC endpoint the supervisor pushes a symbol's data to."""
    return f"ipc://{socket_dir / symbol}.data"


def worker_control_endpoint(socket_dir: Path) -> str:
    """The supervisor's ROUTER that every worker's DEALER connects to."""
    return f"ipc://{socket_dir / 'workers.ctl'}"
