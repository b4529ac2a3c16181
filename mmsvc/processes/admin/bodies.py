"""Response bodies are models, defined once: the view builds one, the document is derived from it.

Every response body of the admin API is a pydantic model (``Body``, or a
record that is already one, such as ``ConfigRecord``). A view builds an
instance and answers it with :func:`respond`, which dumps it as JSON: each
decimal through the one formatter, each time as ISO 8601 (``mmsvc.adapters.wire``).
The OpenAPI document's component schemas are those models' own JSON Schema
(:func:`response_components`), so a body and its description cannot drift
(issue 11); a test validates real responses against the document.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum
from typing import Annotated, Any

from flask import Response, jsonify
from pydantic import BaseModel, ConfigDict, TypeAdapter, WithJsonSchema

from mmsvc.domain.model import RiskTrigger, SymbolState

REF_PREFIX = "#/components/schemas/"


class Body(BaseModel):
    """A response body: closed (no other property), strict, every field in every answer."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        frozen=True,
        json_schema_serialization_defaults_required=True,
    )


def shared_fields(record: object, body: type[BaseModel]) -> dict[str, Any]:
    """``record``'s values of the fields ``body`` shows under the same names.

    The body model says what is shown; a view passes only what it renames or adds.
    """
    return {name: getattr(record, name) for name in body.model_fields if hasattr(record, name)}


def enum_of(kind: type[Enum]) -> WithJsonSchema:
    """An enum's values, inline (no component of its own: a state's name is not a body)."""
    return WithJsonSchema({"type": "string", "enum": [member.value for member in kind]})


StateName = Annotated[SymbolState, enum_of(SymbolState)]
TriggerName = Annotated[RiskTrigger, enum_of(RiskTrigger)]


_ADAPTERS: dict[type, TypeAdapter[Any]] = {}


def _adapter(kind: type) -> TypeAdapter[Any]:
    """One adapter per body type: building one costs milliseconds, dumping microseconds."""
    adapter = _ADAPTERS.get(kind)
    if adapter is None:
        adapter = _ADAPTERS[kind] = TypeAdapter(kind)
    return adapter


def jsonable(body: object) -> Any:
    """``body`` as JSON values; a field left unset (an optional one) is left out."""
    return _adapter(type(body)).dump_python(body, mode="json", exclude_unset=True)


def respond(body: object, status: int = 200) -> Response:
    """The Flask response of a body model."""
    response = jsonify(jsonable(body))
    response.status_code = status
    return response


def response_components(bodies: Mapping[str, type]) -> dict[str, dict[str, Any]]:
    """The component schemas of ``bodies`` (name -> model), as they are serialised.

    A model nested in another is referenced by its component name, so every
    nested model must be listed too (a record's class name may differ from it:
    ``ConfigRecord`` is the component ``Config``).
    """
    names = {model.__name__: name for name, model in bodies.items()}
    schemas: dict[str, dict[str, Any]] = {}
    for name, model in bodies.items():
        schema = _adapter(model).json_schema(mode="serialization", ref_template="{model}")
        unlisted = set(schema.pop("$defs", {})) - set(names)
        if unlisted:
            raise ValueError(f"{name} nests {sorted(unlisted)}: list each as a component")
        schemas[name] = _refs_named(schema, names)
    return schemas


def _refs_named(node: Any, names: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        return {
            key: REF_PREFIX + names[value] if key == "$ref" else _refs_named(value, names)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_refs_named(value, names) for value in node]
    return node
