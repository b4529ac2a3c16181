"""Validation over HTTP: 400 for shape (JSON, type, unknown or missing field), 422 for rules."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine

from mmsvc.processes.admin import config_spec, validation
from tests.integration.admin.conftest import Admin, seed_config

pytestmark = pytest.mark.integration

CREATE = "/v1/mm-configs"


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"symbol": "BTCUSDT", "foo": 1}, 400, "UNKNOWN_FIELD", "foo"),
        ({"base_spread_bps": "10"}, 400, "MISSING_FIELD", "symbol"),
        ({"symbol": 7}, 400, "INVALID_TYPE", "symbol"),
        ({"symbol": "btc-usdt"}, 422, "INVALID_FORMAT", "symbol"),
        ({"symbol": "BTCUSDT", "enabled": "yes"}, 400, "INVALID_TYPE", "enabled"),
        ({"symbol": "BTCUSDT", "max_loss_usdt": True}, 400, "INVALID_TYPE", "max_loss_usdt"),
        ({"symbol": "BTCUSDT", "num_levels": "2"}, 400, "INVALID_TYPE", "num_levels"),
        ({"symbol": "BTCUSDT", "num_levels": 1.5}, 400, "INVALID_TYPE", "num_levels"),
        ({"symbol": "BTCUSDT", "num_levels": 0}, 422, "OUT_OF_RANGE", "num_levels"),
        ({"symbol": "BTCUSDT", "num_levels": 101}, 422, "OUT_OF_RANGE", "num_levels"),
        ({"symbol": "BTCUSDT", "base_spread_bps": "0"}, 422, "OUT_OF_RANGE", "base_spread_bps"),
        ({"symbol": "BTCUSDT", "base_spread_bps": -1}, 422, "OUT_OF_RANGE", "base_spread_bps"),
        ({"symbol": "BTCUSDT", "max_loss_usdt": "-0.01"}, 422, "OUT_OF_RANGE", "max_loss_usdt"),
        ({"symbol": "BTCUSDT", "order_size_usdt": "1e3"}, 422, "INVALID_FORMAT", "order_size_usdt"),
        ({"symbol": "BTCUSDT", "order_size_usdt": "abc"}, 422, "INVALID_FORMAT", "order_size_usdt"),
        (
            {"symbol": "BTCUSDT", "quote_interval_ms": "0.5"},
            422,
            "OUT_OF_RANGE",
            "quote_interval_ms",
        ),
    ],
)
def test_create_names_the_field_and_the_rule(
    admin: Admin, body: dict[str, Any], status: int, code: str, field: str
) -> None:
    response = admin.call("POST", CREATE, body=body)

    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code
    assert response.json()["error"]["field"] == field
    assert field in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "raw", [b"not json", b"[1, 2]", b"", b'{"symbol": "BTCUSDT", "max_loss_usdt": NaN}']
)
def test_a_body_that_is_not_a_json_object_is_400(admin: Admin, raw: bytes) -> None:
    response = admin.call("POST", CREATE, data=raw)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "INVALID_JSON"
    assert response.json()["error"]["field"] is None


def test_update_refuses_the_symbol_as_a_field(admin: Admin, db_engine: Engine) -> None:
    seed_config(db_engine, "BTCUSDT")

    response = admin.call("PUT", "/v1/mm-configs/BTCUSDT", body={"symbol": "ETHUSDT"})

    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "UNKNOWN_FIELD",
        "message": "symbol is not a field of this request",
        "field": "symbol",
    }


def test_update_checks_every_rule_before_anything_else(admin: Admin, db_engine: Engine) -> None:
    seed_config(db_engine, "BTCUSDT")

    response = admin.call("PUT", "/v1/mm-configs/BTCUSDT", body={"max_position_usdt": "0"})

    assert response.status_code == 422
    assert response.json()["error"]["field"] == "max_position_usdt"


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/v1/mm/emergency/kill", {"symbol": 5}, 400, "symbol"),
        ("/v1/mm/emergency/kill", {"why": "x"}, 400, "why"),
        ("/v1/mm/emergency/kill", {"symbol": "btc"}, 422, "symbol"),
        ("/v1/mm/emergency/kill", {"reason": ["x"]}, 400, "reason"),
        ("/v1/mm/emergency/kill", {"reason": "x" * 501}, 422, "reason"),
        ("/v1/mm/reset", {"symbol": "x"}, 422, "symbol"),
        ("/v1/mm/reset", {"reason": "x"}, 400, "reason"),
    ],
)
def test_kill_and_reset_bodies_are_checked(
    admin: Admin, path: str, body: dict[str, Any], status: int, field: str
) -> None:
    response = admin.call("POST", path, body=body)

    assert response.status_code == status
    assert response.json()["error"]["field"] == field


def test_kill_of_an_unknown_symbol_is_404_and_kills_nothing(admin: Admin) -> None:
    response = admin.call("POST", "/v1/mm/emergency/kill", body={"symbol": "DOGEUSDT"})

    assert response.status_code == 404
    status = admin.call("GET", "/v1/mm/status").json()
    assert status["kill_switch"]["active"] is False


def test_decimals_given_as_json_numbers_never_pass_through_a_float() -> None:
    raw = b'{"symbol": "BTCUSDT", "max_loss_usdt": 0.1, "order_size_usdt": 1e-7}'
    body = validation.json_object(raw)
    _, fields = config_spec.config_create(body)

    assert fields["max_loss_usdt"] == Decimal("0.1")
    assert str(fields["max_loss_usdt"]) == "0.1"
    assert fields["order_size_usdt"] == Decimal("1E-7")
