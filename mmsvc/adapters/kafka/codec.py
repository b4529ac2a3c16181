"""Avro values in the Confluent wire format, through a Schema Registry (CONTRACTS.md).

A value is magic byte 0, the writer schema's id as 4 bytes big-endian, then the
Avro binary body. The codec writes with the topic's schema from ``avro/`` and
registers it under ``<topic>-value`` on first use; it reads with the writer
schema fetched by id (once) resolved against the same local schema. After the
first message of a topic no call reaches the registry.
"""

from __future__ import annotations

import io
import json
import os
import struct
import threading
from collections.abc import Mapping
from http import HTTPStatus
from pathlib import Path
from typing import Any, Final

import fastavro
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

import mmsvc
from mmsvc.adapters.kafka import topics

MAGIC: Final = 0
HEADER: Final = struct.Struct(">BI")
AVRO_DIR_ENV: Final = "MMSVC_AVRO_DIR"


class DecodeError(ValueError):
    """Bytes that are not a value of ``topic`` in the Confluent Avro wire format."""

    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"cannot decode a {topic} value: {reason}")
        self.topic = topic
        self.reason = reason


class EncodeError(ValueError):
    """A record that does not match the Avro schema of ``topic``."""

    def __init__(self, topic: str, reason: str) -> None:
        super().__init__(f"cannot encode a {topic} value: {reason}")
        self.topic = topic
        self.reason = reason


def avro_dir() -> Path:
    """The directory of the canonical ``<topic>.avsc`` files (env MMSVC_AVRO_DIR wins)."""
    override = os.environ.get(AVRO_DIR_ENV)
    return Path(override) if override else Path(mmsvc.__file__).parent.parent / "avro"


class _LocalSchema:
    """A topic's own schema: text, parsed form and field names."""

    __slots__ = ("fields", "parsed", "text")

    def __init__(self, text: str) -> None:
        raw = json.loads(text)
        self.text = text
        self.parsed = fastavro.parse_schema(raw)
        self.fields = frozenset(field["name"] for field in raw["fields"])


class AvroCodec:
    """Encodes and decodes every topic's values; thread-safe, caches every schema."""

    def __init__(
        self, registry: str | SchemaRegistryClient, *, schema_dir: Path | None = None
    ) -> None:
        self._owns_client = isinstance(registry, str)
        self._client = (
            SchemaRegistryClient({"url": registry}) if isinstance(registry, str) else registry
        )
        self._dir = schema_dir or avro_dir()
        self._lock = threading.Lock()
        self._local: dict[str, _LocalSchema] = {}
        self._headers: dict[str, bytes] = {}
        # (topic, writer id) -> (writer schema, reader schema or None when identical)
        self._readers: dict[tuple[str, int], tuple[Any, Any]] = {}

    def close(self) -> None:
        """Close the registry client if this codec created it."""
        if self._owns_client:
            self._client.close()

    def local_schema(self, topic: str) -> Any:
        """The parsed local schema of ``topic``; LookupError if ``avro/`` has none."""
        return self._load(topic).parsed

    def register(self, topic: str) -> int:
        """The registry id of the topic's local schema, registering it if needed."""
        header = self._headers.get(topic) or self._register(topic)
        return int(HEADER.unpack(header)[1])

    def encode(self, topic: str, record: Mapping[str, Any]) -> bytes:
        """``record`` in the wire format; EncodeError if it does not match the schema."""
        header = self._headers.get(topic) or self._register(topic)
        local = self._local[topic]
        unknown = record.keys() - local.fields
        if unknown:
            raise EncodeError(topic, f"unknown fields {sorted(unknown)}")
        out = io.BytesIO()
        out.write(header)
        try:
            fastavro.schemaless_writer(out, local.parsed, record)
        except (TypeError, ValueError, AttributeError, KeyError, OverflowError) as exc:
            raise EncodeError(topic, str(exc)) from exc
        return out.getvalue()

    def decode(self, topic: str, data: bytes | None) -> dict[str, Any]:
        """The record in ``data``; DecodeError for any bytes that are not a valid value.

        A null value (tombstone) is a DecodeError too. A registry failure other
        than an unknown schema id propagates unchanged: it says nothing about
        the bytes, and a retry may succeed.
        """
        if data is None:
            raise DecodeError(topic, "null value")
        if len(data) < HEADER.size:
            raise DecodeError(topic, f"{len(data)} bytes is shorter than the 5-byte header")
        magic, schema_id = HEADER.unpack_from(data)
        if magic != MAGIC:
            raise DecodeError(topic, f"magic byte {magic}, expected {MAGIC}")
        writer, reader = self._readers.get((topic, schema_id)) or self._reader(topic, schema_id)
        body = io.BytesIO(data)
        body.seek(HEADER.size)
        try:
            record = fastavro.schemaless_reader(body, writer, reader)
        # A garbage body fails inside fastavro in many ways (EOFError,
        # UnicodeDecodeError, IndexError for an enum out of range, ...); every
        # one of them means these bytes are not a value of this topic.
        except Exception as exc:
            raise DecodeError(topic, f"bad body for schema id {schema_id}: {exc!r}") from exc
        if body.tell() != len(data):
            raise DecodeError(topic, f"{len(data) - body.tell()} bytes left after the record")
        if not isinstance(record, dict):
            raise DecodeError(topic, f"schema id {schema_id} is not a record")
        return record

    def _load(self, topic: str) -> _LocalSchema:
        local = self._local.get(topic)
        if local is None:
            path = self._dir / f"{topic}.avsc"
            if not path.is_file():
                raise LookupError(f"no Avro schema for topic {topic!r} at {path}")
            local = _LocalSchema(path.read_text())
            with self._lock:
                local = self._local.setdefault(topic, local)
        return local

    def _register(self, topic: str) -> bytes:
        local = self._load(topic)
        # Registry errors (registry down) propagate as they are: they say
        # nothing about the record and the caller may retry.
        schema_id = self._client.register_schema(topics.subject(topic), Schema(local.text, "AVRO"))
        header = HEADER.pack(MAGIC, schema_id)
        with self._lock:
            self._headers[topic] = header
            # Our own messages need no fetch of the writer schema.
            self._readers.setdefault((topic, schema_id), (local.parsed, None))
        return header

    def _reader(self, topic: str, schema_id: int) -> tuple[Any, Any]:
        local = self._load(topic)
        try:
            fetched = self._client.get_schema(schema_id)
        except SchemaRegistryError as exc:
            # Only "no such id" condemns the bytes; any other registry failure
            # propagates so that a message that changes money is never dropped
            # because the registry was briefly unreachable (ARCHITECTURE D1).
            if exc.http_status_code != HTTPStatus.NOT_FOUND:
                raise
            raise DecodeError(topic, f"unknown schema id {schema_id}") from exc
        if (fetched.schema_type or "AVRO") != "AVRO" or fetched.schema_str is None:
            raise DecodeError(topic, f"schema id {schema_id} is not an Avro schema")
        writer = fastavro.parse_schema(json.loads(fetched.schema_str))
        pair = (writer, None if writer == local.parsed else local.parsed)
        with self._lock:
            return self._readers.setdefault((topic, schema_id), pair)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """The zigzag-decoded Avro int/long at ``pos`` and the position after it."""
    shift = 0
    raw = 0
    while True:
        byte = data[pos]  # IndexError when truncated: handled by the caller
        pos += 1
        raw |= (byte & 0x7F) << shift
        if byte < 0x80:
            return (raw >> 1) ^ -(raw & 1), pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


_EVENT_TYPES: Final = 5  # ACCEPTED, REJECTED, FILL, CANCELED, EXPIRED
_EVENT_TYPE_FIELD: Final = 1
_ACCOUNT_ID_FIELD: Final = 5


def engine_event_account_id(data: bytes | None) -> str | None:
    """account_id of an engine.event.v1 value, reading only its first six fields.

    Far cheaper than a full decode, for dropping other accounts' events
    (ARCHITECTURE D14). It assumes the writer schema is the canonical one in
    ``avro/engine.event.v1.avsc`` (event_id, event_type, symbol, order_id,
    client_order_id, account_id come first) and does not check the schema id;
    the worker's full decode re-checks every event it keeps. Returns None for
    bytes it cannot read; never raises.
    """
    if data is None or len(data) < HEADER.size or data[0] != MAGIC:
        return None
    end = len(data)
    pos = HEADER.size
    try:
        for field in range(_ACCOUNT_ID_FIELD + 1):
            byte = data[pos]
            if byte < 0x80 and not byte & 1:  # fast path: one-byte varint of 0..63
                value = byte >> 1
                pos += 1
            else:
                value, pos = _varint(data, pos)
            if field == _EVENT_TYPE_FIELD:  # an enum index, not a string length
                if not 0 <= value < _EVENT_TYPES:
                    return None
                continue
            if value < 0 or pos + value > end:
                return None
            if field == _ACCOUNT_ID_FIELD:
                return data[pos : pos + value].decode()
            pos += value
    except (IndexError, ValueError):  # truncated, or not UTF-8 (UnicodeDecodeError)
        return None
    return None  # unreachable: the loop returns at the account_id field
