"""The schema and subject endpoints: one function per route, answering a JSON value."""

from __future__ import annotations

import json
from typing import Any

from mmsvc.devstack.registry.params import Params, Query, flag, page, parse_schema_id, parse_version
from mmsvc.devstack.registry.schemas import schema_body, schema_request
from mmsvc.devstack.registry.store import SchemaStore


def register(store: SchemaStore, params: Params, query: Query, body: Any) -> Any:
    """POST /subjects/{subject}/versions."""
    schema_id, version, guid = store.register(params["subject"], schema_request(body))
    return {"id": schema_id, "version": version, "guid": guid, "subject": params["subject"]}


def lookup(store: SchemaStore, params: Params, query: Query, body: Any) -> Any:
    """POST /subjects/{subject}."""
    canonical = schema_request(body)
    return store.lookup(params["subject"], canonical, deleted=flag(query, "deleted"))


def get_schema(store: SchemaStore, params: Params, query: Query, body: Any) -> Any:
    """GET /schemas/ids/{id}."""
    _, text, schema_type, guid = store.schema_by_id(parse_schema_id(params["id"]))
    return {**schema_body(text, schema_type), "guid": guid}


def get_schema_text(store: SchemaStore, params: Params, query: Query, body: Any) -> Any:
    """GET /schemas/ids/{id}/schema: the schema itself."""
    return json.loads(store.schema_by_id(parse_schema_id(params["id"]))[1])


def get_schema_by_guid(store: SchemaStore, params: Params, query: Query, body: Any) -> Any:
    """GET /schemas/guids/{guid}."""
    schema_id, text, schema_type, _ = store.schema_by_guid(params["guid"])
    return {**schema_body(text, schema_type), "id": schema_id}


def get_schema_subjects(store: SchemaStore, params: Params, query: Query, body: Any) -> Any:
    """GET /schemas/ids/{id}/subjects."""
    usages = store.usages(parse_schema_id(params["id"]), deleted=flag(query, "deleted"))
    wanted = query.get("subject")
    subjects = sorted({s for s, _ in usages if wanted is None or s == wanted})
    return page(subjects, query)


def get_schema_versions(store: SchemaStore, params: Params, query: Query, body: Any) -> Any:
    """GET /schemas/ids/{id}/versions."""
    usages = store.usages(parse_schema_id(params["id"]), deleted=flag(query, "deleted"))
    wanted = query.get("subject")
    pairs = [{"subject": s, "version": v} for s, v in usages if wanted is None or s == wanted]
    return page(pairs, query)


def get_schema_types(store: SchemaStore, params: Params, query: Query, body: Any) -> Any:
    """GET /schemas/types."""
    return ["AVRO"]


def get_subjects(store: SchemaStore, params: Params, query: Query, body: Any) -> Any:
    """GET /subjects."""
    subjects = store.subjects(
        deleted=flag(query, "deleted"),
        deleted_only=flag(query, "deleted_only"),
        prefix=query.get("subjectPrefix", ""),
    )
    return page(subjects, query)


def get_versions(store: SchemaStore, params: Params, query: Query, body: Any) -> Any:
    """GET /subjects/{subject}/versions."""
    versions = store.versions(
        params["subject"],
        deleted=flag(query, "deleted"),
        deleted_only=flag(query, "deleted_only"),
    )
    return page(versions, query)


def get_version(store: SchemaStore, params: Params, query: Query, body: Any) -> Any:
    """GET /subjects/{subject}/versions/{version}."""
    version = parse_version(params["version"])
    return store.version(params["subject"], version, deleted=flag(query, "deleted"))


def get_version_text(store: SchemaStore, params: Params, query: Query, body: Any) -> Any:
    """GET /subjects/{subject}/versions/{version}/schema: the schema itself."""
    return json.loads(get_version(store, params, query, body)["schema"])


def get_referenced_by(store: SchemaStore, params: Params, query: Query, body: Any) -> Any:
    """GET /subjects/{subject}/versions/{version}/referencedby: always empty (no references)."""
    get_version(store, params, query, body)
    return []


def delete_subject(store: SchemaStore, params: Params, query: Query, body: Any) -> Any:
    """DELETE /subjects/{subject}."""
    return store.delete_subject(params["subject"], permanent=flag(query, "permanent"))


def delete_version(store: SchemaStore, params: Params, query: Query, body: Any) -> Any:
    """DELETE /subjects/{subject}/versions/{version}."""
    version = parse_version(params["version"])
    return store.delete_version(params["subject"], version, permanent=flag(query, "permanent"))


def get_mode(store: SchemaStore, params: Params, query: Query, body: Any) -> Any:
    """GET /mode and /mode/{subject}: always READWRITE."""
    return {"mode": "READWRITE"}


def get_root(store: SchemaStore, params: Params, query: Query, body: Any) -> Any:
    """GET /."""
    return {}


def get_contexts(store: SchemaStore, params: Params, query: Query, body: Any) -> Any:
    """GET /contexts: only the default context."""
    return ["."]
