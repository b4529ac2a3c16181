"""/openapi.json describes exactly the routes served, and every object schema is closed (D21)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from pydantic import TypeAdapter

from mmsvc.adapters.db.records import ConfigRecord
from mmsvc.config import load_settings
from mmsvc.domain.symbol_config import CONFIG_FIELDS, ConfigFields, MMConfig
from mmsvc.processes.admin import create_app, openapi
from mmsvc.processes.admin.context import EXTENSION
from tests.integration.admin.conftest import Admin

pytestmark = pytest.mark.integration

HTTP_METHODS = {"GET", "POST", "PUT", "DELETE", "PATCH"}


@pytest.fixture
def app(admin_env: dict[str, str]) -> Iterator[Flask]:
    """The same app gunicorn serves, built in-process to read its routes."""
    app = create_app(load_settings(admin_env))
    yield app
    app.extensions[EXTENSION].close()


def served_routes(app: Flask) -> set[tuple[str, str]]:
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = rule.rule.replace("<", "{").replace(">", "}")
        routes |= {(method, path) for method in (rule.methods or set()) & HTTP_METHODS}
    return routes


def documented_routes(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (method.upper(), path)
        for path, operations in document["paths"].items()
        for method in operations
    }


def object_schemas(node: Any, where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield where, node
        for key, value in node.items():
            yield from object_schemas(value, f"{where}/{key}")
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from object_schemas(value, f"{where}/{index}")


def test_the_served_document_is_the_document(admin: Admin) -> None:
    response = admin.call("GET", "/openapi.json", token=None)

    assert response.status_code == 200
    assert response.json() == openapi.document()
    assert response.json()["openapi"].startswith("3.")


def test_every_route_served_is_documented_and_nothing_else(app: Flask) -> None:
    assert served_routes(app) == documented_routes(openapi.document())


def test_every_object_schema_forbids_unknown_properties() -> None:
    document = openapi.document()
    this_document = "/paths//openapi.json/get/responses/200/content/application/json/schema"

    for where, schema in object_schemas(document):
        if where == this_document:
            continue
        closed = schema.get("additionalProperties")
        # A {symbol: reason} map is closed by typing its values instead.
        assert closed is False or (isinstance(closed, dict) and closed.get("type")), where


def test_every_operation_lists_auth_failures_and_has_an_id() -> None:
    for path, operations in openapi.document()["paths"].items():
        for method, operation in operations.items():
            assert operation["operationId"], (method, path)
            if operation["security"]:
                assert {"401", "403", "503"} <= set(operation["responses"]), (method, path)


def test_the_config_schemas_are_generated_from_the_config_model() -> None:
    # issue 11: no config field is listed by hand in the document.
    schemas = openapi.document()["components"]["schemas"]

    assert schemas["ConfigCreate"] == TypeAdapter(MMConfig).json_schema()
    assert schemas["ConfigUpdate"] == TypeAdapter(ConfigFields).json_schema()
    assert schemas["Config"] == TypeAdapter(ConfigRecord).json_schema(mode="serialization")
    assert set(schemas["Config"]["required"]) >= set(CONFIG_FIELDS)
    spread = schemas["ConfigCreate"]["properties"]["base_spread_bps"]["anyOf"]
    assert {"type": "number", "exclusiveMinimum": 0.0, "maximum": 10000.0} in spread
