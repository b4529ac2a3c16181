"""Avro schema text in and out: canonical text of what clients send, bodies of answers."""

from __future__ import annotations

import json
from typing import Any

import fastavro

from mmsvc.devstack.registry.errors import invalid_schema
from mmsvc.devstack.registry.rows import VersionRow


def canonical_avro(text: str) -> str:
    """The schema as compact JSON, after checking it is valid Avro; raises 42201."""
    try:
        parsed = json.loads(text)
    except (json.JSONDecodeError, TypeError) as exc:
        raise invalid_schema(f"not JSON: {exc}") from exc
    try:
        fastavro.parse_schema(parsed)
    # fastavro reports a bad schema with several exception types, none of them
    # shared; any of them means the text is not a valid Avro schema.
    except Exception as exc:
        raise invalid_schema(str(exc)) from exc
    return json.dumps(parsed, separators=(",", ":"), ensure_ascii=False)


def schema_request(body: Any) -> str:
    """The canonical text of a register or lookup request body."""
    if not isinstance(body, dict) or not isinstance(body.get("schema"), str):
        raise invalid_schema("the request has no 'schema' string")
    schema_type = body.get("schemaType") or "AVRO"
    if schema_type != "AVRO":
        raise invalid_schema(f"schema type {schema_type} is not supported by this registry")
    if body.get("references"):
        raise invalid_schema("schema references are not supported by this registry")
    return canonical_avro(body["schema"])


def registered_body(
    subject: str, row: VersionRow, schema: tuple[int, str, str, str]
) -> dict[str, Any]:
    """The body of one subject version: subject, version, id, guid and the schema."""
    body = {"subject": subject, "version": row.version, "id": row.schema_id, "guid": schema[3]}
    return {**body, **schema_body(schema[1], schema[2])}


def schema_body(text: str, schema_type: str) -> dict[str, Any]:
    """``{"schema": ...}``, with ``schemaType`` for any type but Avro."""
    # Confluent leaves schemaType out for Avro, the default type.
    return (
        {"schema": text} if schema_type == "AVRO" else {"schema": text, "schemaType": schema_type}
    )
