"""The dev stack's Schema Registry, through confluent-kafka's own client and raw HTTP."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psycopg
import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from mmsvc.adapters.kafka import topics
from mmsvc.adapters.kafka.codec import avro_dir
from mmsvc.devstack import services, stack
from mmsvc.devstack.registry import COMPATIBILITY_LEVELS
from tests.fixtures.waiting import wait_for

pytestmark = pytest.mark.integration

SCRATCH_DATABASE = "mmsvc_scratch_registry_restart"


def avsc(topic: str) -> str:
    return (avro_dir() / f"{topic}.avsc").read_text()


def unique_subject(name: str = "test") -> str:
    return f"{name}-{uuid.uuid4().hex[:12]}-value"


def record_schema(name: str) -> str:
    """A small valid record schema of its own, so tests never share an id by accident."""
    fields = [{"name": "symbol", "type": "string"}, {"name": "ts_ms", "type": "long"}]
    return json.dumps({"type": "record", "name": name, "namespace": "test.v1", "fields": fields})


@pytest.fixture
def client(registry_url: str) -> Iterator[SchemaRegistryClient]:
    sr = SchemaRegistryClient({"url": registry_url})
    yield sr
    sr.close()


class Http:
    """One keep-alive HTTP/1.1 connection to the registry."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=5)

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, str, Any]:
        payload = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/vnd.schemaregistry.v1+json"}
        self.conn.request(method, path, body=payload, headers=headers)
        response = self.conn.getresponse()
        data = response.read()
        return response.status, response.getheader("Content-Type") or "", json.loads(data)


@pytest.fixture
def raw(registry_url: str) -> Iterator[Http]:
    conn = Http(registry_url)
    yield conn
    conn.conn.close()


def test_register_lookup_and_fetch_through_the_confluent_client(
    client: SchemaRegistryClient,
) -> None:
    subject = unique_subject("md.mark.v1")
    schema = Schema(avsc(topics.MARK), "AVRO")

    schema_id = client.register_schema(subject, schema)

    registered = client.lookup_schema(subject, schema)
    assert (registered.schema_id, registered.version, registered.subject) == (schema_id, 1, subject)
    fetched = client.get_schema(schema_id)
    assert json.loads(fetched.schema_str or "") == json.loads(avsc(topics.MARK))
    assert subject in client.get_subjects()
    assert client.get_versions(subject) == [1]
    latest = client.get_latest_version(subject)
    assert (latest.schema_id, latest.version) == (schema_id, 1)
    assert client.get_version(subject, 1).schema_id == schema_id
    assert subject in client.get_subjects_by_schema_id(schema_id)
    assert (subject, 1) in {(v.subject, v.version) for v in client.get_schema_versions(schema_id)}


def test_registering_the_same_schema_again_returns_the_same_id_and_version(
    client: SchemaRegistryClient, raw: Http
) -> None:
    subject = unique_subject()
    text = record_schema("Again")
    first = client.register_schema(subject, Schema(text, "AVRO"))

    # A fresh client has no cache: the registry itself must answer with the same id.
    status, _, body = raw.call(
        "POST", f"/subjects/{subject}/versions", {"schema": text, "schemaType": "AVRO"}
    )

    assert status == 200
    assert (body["id"], body["version"]) == (first, 1)


def test_same_schema_gets_the_same_id_across_subjects_and_whitespace(
    client: SchemaRegistryClient,
) -> None:
    text = record_schema("Shared")
    respaced = json.dumps(json.loads(text), indent=4)
    first = client.register_schema(unique_subject("a"), Schema(text, "AVRO"))
    second = client.register_schema(unique_subject("b"), Schema(respaced, "AVRO"))
    other = client.register_schema(unique_subject("c"), Schema(record_schema("Other"), "AVRO"))

    assert first == second
    assert other != first


def test_a_new_schema_under_a_subject_becomes_its_next_version(
    client: SchemaRegistryClient,
) -> None:
    subject = unique_subject()
    v1 = client.register_schema(subject, Schema(record_schema("V1"), "AVRO"))
    v2 = client.register_schema(subject, Schema(record_schema("V2"), "AVRO"))

    assert v2 != v1
    assert client.get_versions(subject) == [1, 2]
    assert client.get_latest_version(subject).schema_id == v2


def test_unknown_subject_answers_404_with_error_code_40401(raw: Http) -> None:
    status, content_type, body = raw.call("GET", "/subjects/no-such-subject-value/versions")

    assert status == 404
    assert content_type == "application/vnd.schemaregistry.v1+json"
    assert body == {"error_code": 40401, "message": "Subject 'no-such-subject-value' not found."}


def test_unknown_schema_id_answers_404_with_error_code_40403(raw: Http) -> None:
    status, _, body = raw.call("GET", "/schemas/ids/987654321")

    assert status == 404
    assert body["error_code"] == 40403


def test_the_confluent_client_sees_the_registry_error_codes(client: SchemaRegistryClient) -> None:
    subject = unique_subject()
    client.register_schema(subject, Schema(record_schema("Codes"), "AVRO"))
    cases: list[tuple[Callable[[], object], int, int]] = [
        (lambda: client.get_versions(unique_subject("missing")), 404, 40401),
        (lambda: client.get_version(subject, 99), 404, 40402),
        (lambda: client.get_schema(987654321), 404, 40403),
        (lambda: client.lookup_schema(subject, Schema(record_schema("Nope"), "AVRO")), 404, 40403),
        (lambda: client.register_schema(subject, Schema('{"type": "recor', "AVRO")), 422, 42201),
        (lambda: client.register_schema(subject, Schema('{"type": "nope"}', "AVRO")), 422, 42201),
    ]
    for call, status, code in cases:
        with pytest.raises(SchemaRegistryError) as caught:
            call()
        assert (caught.value.http_status_code, caught.value.error_code) == (status, code)


def test_an_invalid_version_answers_422_with_error_code_42202(raw: Http) -> None:
    status, _, body = raw.call("GET", "/subjects/whatever-value/versions/zero")

    assert status == 422
    assert body["error_code"] == 42202


def test_a_bad_request_is_answered_and_the_connection_stays_usable(raw: Http) -> None:
    status, _, body = raw.call("GET", "/subjects?offset=abc")
    assert (status, body["error_code"]) == (400, 400)

    status, _, body = raw.call("POST", "/subjects/x-value/versions", {"schema": 42})
    assert (status, body["error_code"]) == (422, 42201)

    status, _, body = raw.call("GET", "/schemas/types")
    assert (status, body) == (200, ["AVRO"])


def test_soft_then_permanent_delete_of_a_subject(client: SchemaRegistryClient) -> None:
    subject = unique_subject()
    schema_id = client.register_schema(subject, Schema(record_schema("Gone"), "AVRO"))

    assert client.delete_subject(subject) == [1]
    assert subject not in client.get_subjects()
    assert subject in client.get_subjects(deleted=True)
    assert client.delete_subject(subject, permanent=True) == [1]
    assert subject not in client.get_subjects(deleted=True)
    # The id stays reserved for that schema: registering it again reuses it.
    assert client.register_schema(subject, Schema(record_schema("Gone"), "AVRO")) == schema_id


def test_delete_one_version(client: SchemaRegistryClient) -> None:
    subject = unique_subject()
    client.register_schema(subject, Schema(record_schema("D1"), "AVRO"))
    client.register_schema(subject, Schema(record_schema("D2"), "AVRO"))

    assert client.delete_version(subject, 1) == 1
    assert client.get_versions(subject) == [2]


def test_compatibility_levels_are_stored_globally_and_per_subject(
    client: SchemaRegistryClient,
) -> None:
    subject = unique_subject()
    client.register_schema(subject, Schema(record_schema("Compat"), "AVRO"))

    client.set_compatibility(subject, "NONE")

    assert client.get_compatibility(subject) == "NONE"
    assert client.get_compatibility() in COMPATIBILITY_LEVELS
    with pytest.raises(SchemaRegistryError) as caught:
        client.set_compatibility(subject, "SIDEWAYS")
    assert caught.value.error_code == 42203


def test_keep_alive_responses_leave_whole_in_one_segment(
    client: SchemaRegistryClient, raw: Http, registry_url: str
) -> None:
    """Nagle plus a delayed ACK holds back the second small write of a response
    (~40 ms); a response written once, headers and body together, cannot be held.
    That is asserted here, not a time: the whole answer is in the first read."""
    subject = unique_subject()
    text = record_schema("Fast")
    client.register_schema(subject, Schema(text, "AVRO"))
    raw.call("POST", f"/subjects/{subject}", {"schema": text})
    connection = raw.conn.sock
    for _ in range(30):
        status, _, _ = raw.call("POST", f"/subjects/{subject}", {"schema": text})
        assert status == 200
    assert raw.conn.sock is connection  # one keep-alive connection throughout

    parts = urlsplit(registry_url)
    body = json.dumps({"schema": text}).encode()
    request = (
        f"POST /subjects/{subject} HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        f"Content-Type: application/vnd.schemaregistry.v1+json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname or "", parts.port or 80), timeout=5) as sock:
        for _ in range(3):
            sock.sendall(request + body)
            first_read = sock.recv(65536)
            head, _, payload = first_read.partition(b"\r\n\r\n")
            length = next(
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            assert head.startswith(b"HTTP/1.1 200")
            assert len(payload) == length, "the response left in more than one write"


@pytest.fixture
def scratch_database_url(pg_admin_url: str) -> Iterator[str]:
    url = services.ensure_database(pg_admin_url, SCRATCH_DATABASE, recreate=True)
    yield url
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{SCRATCH_DATABASE}" WITH (FORCE)')


def stop_registry(run_dir: Path, timeout: float = 10) -> int:
    """SIGTERM the registry started under ``run_dir`` and reap it; its exit code.

    ``stack.down`` alone would wait out its whole grace period here: the
    registry is this process's child, and an unreaped child still looks alive.
    """
    pid = int((run_dir / "pids" / "registry.pid").read_text())
    os.kill(pid, signal.SIGTERM)

    def reaped() -> tuple[int] | None:  # a tuple: exit code 0 is falsy
        done, status = os.waitpid(pid, os.WNOHANG)
        return (os.waitstatus_to_exitcode(status),) if done else None

    (code,) = wait_for(reaped, timeout, "the registry to exit on SIGTERM", poll_s=0.05)
    return int(code)


def test_ids_survive_a_registry_restart_and_sigterm_exits_cleanly(
    tmp_path: Path, scratch_database_url: str
) -> None:
    first_run, second_run = tmp_path / "first", tmp_path / "second"
    text = avsc(topics.ENGINE_EVENTS)
    db = scratch_database_url
    try:
        before = SchemaRegistryClient({"url": stack.start_registry(first_run, db)})
        schema_id = before.register_schema("engine.event.v1-value", Schema(text, "AVRO"))
        before.close()
        assert stop_registry(first_run) == 0

        after = SchemaRegistryClient({"url": stack.start_registry(second_run, db)})
        assert json.loads(after.get_schema(schema_id).schema_str or "") == json.loads(text)
        assert after.register_schema("engine.event.v1-value", Schema(text, "AVRO")) == schema_id
        fresh = after.register_schema("other-value", Schema(record_schema("Fresh"), "AVRO"))
        assert fresh > schema_id
        after.close()
        assert stop_registry(second_run) == 0
    finally:
        stack.down(first_run)
        stack.down(second_run)
