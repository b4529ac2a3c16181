"""Every response the OpenAPI document describes, checked against a real answer of the API.

The response schemas are derived from the models the views build (issue 11);
this test keeps the two honest from the other side. It drives each operation
over real HTTP until it has produced every documented status that carries a
body of its own (not the shared Error), validates every answer it gets, errors
included, against the served document (schemathesis's validator: status,
content type, schema with unknown properties forbidden), and checks that the
answers reached every response component, nested ones too (a quote's side, a
dead letter in its list), so no part of the document goes unchecked.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import pytest
import redis
import requests
import schemathesis
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from mmsvc.adapters.db.dead_letters import DeadLetterRepository
from mmsvc.adapters.db.orders import OrderRepository
from mmsvc.adapters.db.positions import PositionRepository
from mmsvc.adapters.db.records import NewOrder, PositionRecord, Side, SymbolState
from mmsvc.adapters.status.redis_store import StatusStore
from mmsvc.processes.admin import openapi
from tests.fixtures.exchange import Exchange
from tests.fixtures.waiting import wait_for
from tests.integration.admin.conftest import OPERATE, READ, Admin, _wipe, open_orders, seed_config
from tests.integration.admin.test_status import worker_status

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REF = "#/components/schemas/"
ERROR = f"{REF}Error"


class Observer:
    """Calls the API by documented path, validates each answer, and records what it covered."""

    def __init__(self, admin: Admin, document: dict[str, Any]) -> None:
        self.admin = admin
        self.document = document
        self.schema = schemathesis.openapi.from_url(f"{admin.url}/openapi.json")
        self.statuses: set[tuple[str, str, str]] = set()
        self.components: set[str] = set()

    def call(
        self, method: str, template: str, token: str | None = None, body: Any = None, **path: str
    ) -> requests.Response:
        """One request to ``template`` (its {parameters} from ``path``), validated."""
        url = template.format(**path)
        response = self.admin.call(
            method, url, **({} if token is None else {"token": token}), body=body
        )
        self.schema[template][method.lower()].validate_response(response)
        status = str(response.status_code)
        self.statuses.add((method, template, status))
        documented = self.document["paths"][template][method.lower()]["responses"][status]
        content = documented.get("content", {}).get("application/json")
        if content is not None:
            self._reach(content["schema"], response.json())
        return response

    def _reach(self, schema: Mapping[str, Any], instance: Any) -> None:
        """Record every component ``instance`` passed through (it is valid: validated above)."""
        if "$ref" in schema:
            name = schema["$ref"].removeprefix(REF)
            self.components.add(name)
            self._reach(self.document["components"]["schemas"][name], instance)
        elif "anyOf" in schema:
            for branch in schema["anyOf"]:
                if instance is not None and branch.get("type") != "null":
                    self._reach(branch, instance)
        elif isinstance(instance, dict):
            for key, value in instance.items():
                child = schema.get("properties", {}).get(key, schema.get("additionalProperties"))
                if isinstance(child, dict):
                    self._reach(child, value)
        elif isinstance(instance, list) and "items" in schema:
            for value in instance:
                self._reach(schema["items"], value)


def own_bodies(document: dict[str, Any]) -> set[tuple[str, str, str]]:
    """Every documented (method, path, status) whose body is its own schema, not the Error."""
    return {
        (method.upper(), path, status)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        for status, response in operation["responses"].items()
        if "content" in response
        and response["content"]["application/json"]["schema"].get("$ref") != ERROR
    }


def response_components(document: dict[str, Any]) -> set[str]:
    """Every component schema but the request bodies'."""
    requests_ = {
        operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].removeprefix(REF)
        for operations in document["paths"].values()
        for operation in operations.values()
        if "requestBody" in operation
    }
    return set(document["components"]["schemas"]) - requests_


@pytest.fixture
def store(admin: Admin, redis_url: str) -> Iterator[StatusStore]:
    """The admin's Redis store (same prefix), as a worker writes to it."""
    store = StatusStore(redis_url, admin.prefix)
    yield store
    store.close()


def seed_a_quoting_symbol(db_engine: Engine, store: StatusStore) -> None:
    """BTCUSDT with a position, an open order and a live status with a two-sided quote."""
    seed_config(db_engine, "BTCUSDT", SymbolState.ACTIVE)
    with Session(db_engine) as session, session.begin():
        order = NewOrder(
            uuid.uuid4(), "BTCUSDT", Side.BUY, Decimal("64967.5"), Decimal("0.0015"), 0
        )
        OrderRepository(session).insert_pending(order)
        PositionRepository(session).upsert(
            PositionRecord(
                "BTCUSDT", Decimal("0.015"), Decimal("65000"), Decimal("1.25"), Decimal("-0.1")
            )
        )
        DeadLetterRepository(session).add(
            symbol="BTCUSDT",
            topic="engine.event.v1",
            partition=1,
            offset=3,
            key="BTCUSDT",
            value=b"\x00not-a-fill",
            reason="negative_quantity",
            detail="fill_quantity '-1' must be > 0",
        )
    store.publish("BTCUSDT", worker_status("BTCUSDT"), ttl_s=60)
    store.heartbeat("supervisor")


def without_the_supervisor(api: Observer, db_engine: Engine, store: StatusStore) -> None:
    """Status with every nested body filled in, dead letters, refusals, and /readyz's 503."""
    seed_a_quoting_symbol(db_engine, store)
    for template in ("/healthz", "/openapi.json"):
        assert api.call("GET", template).status_code == 200
    wait_for(lambda: api.call("GET", "/readyz").status_code == 503, 30, "/readyz: supervisor down")
    assert api.call("GET", "/v1/mm/status", READ).status_code == 200
    status = api.call("GET", "/v1/mm-configs/{symbol}/status", READ, symbol="BTCUSDT").json()
    assert status["live"]["last_quote"]["levels"][0]["ask"] is not None
    listing = api.call("GET", "/v1/mm/dead-letters", READ).json()
    assert listing["dead_letters"]
    clear = {"action": "discard", "reason": "checked by hand"}
    [row] = listing["dead_letters"]
    assert (
        api.call(
            "POST",
            "/v1/mm/dead-letters/{dead_letter_id}/clear",
            body=clear,
            dead_letter_id=str(row["id"]),
        ).status_code
        == 200
    )
    assert api.call("GET", "/v1/mm-configs", token="not-a-token").status_code == 401
    assert api.call("POST", "/v1/mm/reset", READ).status_code == 403
    assert api.call("GET", "/v1/mm-configs/{symbol}", READ, symbol="NOSUCH").status_code == 404
    assert api.call("POST", "/v1/mm-configs", body={"symbol": "x"}).status_code == 400
    assert api.call("POST", "/v1/mm/emergency/flatten").status_code == 503
    assert (
        api.call("POST", "/v1/mm-configs/{symbol}/enable", OPERATE, symbol="BTCUSDT").status_code
        == 503
    )


def with_the_supervisor(api: Observer, exchange: Exchange) -> None:
    """Every control's success, through the real supervisor and a worker on the simulator."""
    symbol = {"symbol": "BTCUSDT"}
    assert api.call("POST", "/v1/mm-configs", body=symbol).status_code == 201
    assert api.call("GET", "/v1/mm-configs/{symbol}", READ, **symbol).status_code == 200
    assert api.call("GET", "/v1/mm-configs", READ).status_code == 200
    update = {"num_levels": 2}
    assert api.call("PUT", "/v1/mm-configs/{symbol}", body=update, **symbol).status_code == 200
    assert api.call("GET", "/readyz").status_code == 200
    for verb in ("enable", "pause", "resume"):
        answer = api.call("POST", f"/v1/mm-configs/{{symbol}}/{verb}", OPERATE, **symbol)
        assert answer.status_code == 200, answer.text
    assert api.call("POST", "/v1/mm-configs/{symbol}/enable", OPERATE, **symbol).status_code == 409
    assert api.call("POST", "/v1/mm/emergency/flatten").status_code == 200
    assert api.call("POST", "/v1/mm/emergency/kill", body=symbol).status_code == 200
    assert api.call("POST", "/v1/mm/reset", body=symbol).status_code == 200
    assert api.call("POST", "/v1/mm/reset").status_code == 409  # nothing HALTED any more
    wait_for(lambda: not open_orders(exchange, "BTCUSDT"), 15, "orders canceled by the kill")
    wait_for(
        lambda: api.call("DELETE", "/v1/mm-configs/{symbol}", **symbol).status_code == 204,
        15,
        "the delete once the symbol is idle",
        0.2,
    )


def test_every_documented_response_matches_a_real_one(
    request: pytest.FixtureRequest,
    admin: Admin,
    db_engine: Engine,
    store: StatusStore,
    store_redis: redis.Redis,
    exchange: Exchange,
) -> None:
    document = openapi.document()
    api = Observer(admin, document)

    without_the_supervisor(api, db_engine, store)
    _wipe(admin, db_engine, store_redis)  # the supervisor would run the seeded symbol
    request.getfixturevalue("supervisor")
    with_the_supervisor(api, exchange)

    assert own_bodies(document) <= api.statuses
    assert api.components == response_components(document)
