"""Validation over HTTP: 400 naming the field, for shape (JSON, type, field) and for bounds."""

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
        ({"symbol": "btc-usdt"}, 400, "INVALID_FORMAT", "symbol"),
        ({"symbol": "BTCUSDT", "enabled": "yes"}, 400, "INVALID_TYPE", "enabled"),
        ({"symbol": "BTCUSDT", "max_loss_usdt": True}, 400, "INVALID_TYPE", "max_loss_usdt"),
        ({"symbol": "BTCUSDT", "num_levels": "2"}, 400, "INVALID_TYPE", "num_levels"),
        ({"symbol": "BTCUSDT", "num_levels": 1.5}, 400, "INVALID_TYPE", "num_levels"),
        ({"symbol": "BTCUSDT", "num_levels": 0}, 400, "OUT_OF_RANGE", "num_levels"),
        ({"symbol": "BTCUSDT", "num_levels": 21}, 400, "OUT_OF_RANGE", "num_levels"),
        ({"symbol": "BTCUSDT", "base_spread_bps": "0"}, 400, "OUT_OF_RANGE", "base_spread_bps"),
        ({"symbol": "BTCUSDT", "base_spread_bps": -1}, 400, "OUT_OF_RANGE", "base_spread_bps"),
        ({"symbol": "BTCUSDT", "max_loss_usdt": "-0.01"}, 400, "INVALID_FORMAT", "max_loss_usdt"),
        ({"symbol": "BTCUSDT", "order_size_usdt": "1e3"}, 400, "INVALID_FORMAT", "order_size_usdt"),
        ({"symbol": "BTCUSDT", "order_size_usdt": "abc"}, 400, "INVALID_FORMAT", "order_size_usdt"),
        (
            {"symbol": "BTCUSDT", "quote_interval_ms": "0.5"},
            400,
            "INVALID_TYPE",
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


# issue 11: each value the database held and the core refused (or that switched a limit
# off), as JSON strings and as JSON numbers, is a 400 that names the field and its bounds.
@pytest.mark.parametrize(
    ("raw", "field"),
    [
        (b'"base_spread_bps": "0"', "base_spread_bps"),
        (b'"base_spread_bps": 0', "base_spread_bps"),
        (b'"staleness_threshold_ms": 0.5', "staleness_threshold_ms"),
        (b'"staleness_threshold_ms": 0', "staleness_threshold_ms"),
        (b'"order_size_usdt": 1e40', "order_size_usdt"),
        (b'"order_size_usdt": "10000000000000000000000000000000000000000"', "order_size_usdt"),
        (b'"max_position_usdt": 1e300', "max_position_usdt"),
        (b'"num_levels": 21', "num_levels"),
        (b'"quote_interval_ms": 5', "quote_interval_ms"),
        (b'"order_size_usdt": 1.11111111111111111111111111111111111111', "order_size_usdt"),
        (b'"order_size_usdt": "1.11111111111111111111111111111111111111"', "order_size_usdt"),
        (b'"max_loss_usdt": "NaN"', "max_loss_usdt"),
        (b'"max_loss_usdt": "Infinity"', "max_loss_usdt"),
        (b'"inventory_skew_factor": 1.5', "inventory_skew_factor"),
        (b'"level_spacing_bps": "10000.01"', "level_spacing_bps"),
    ],
)
def test_an_out_of_bound_value_is_400_naming_the_field(
    admin: Admin, raw: bytes, field: str
) -> None:
    response = admin.call("POST", CREATE, data=b'{"symbol": "BTCUSDT", ' + raw + b"}")

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert error["message"].startswith(field)
    assert error["code"] in {"OUT_OF_RANGE", "INVALID_FORMAT", "INVALID_TYPE"}


def test_an_out_of_bound_update_is_400_and_changes_nothing(admin: Admin, db_engine: Engine) -> None:
    seed_config(db_engine, "BTCUSDT")

    response = admin.call("PUT", "/v1/mm-configs/BTCUSDT", data=b'{"max_position_usdt": 1e300}')

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "max_position_usdt"
    assert "<= 1000000000000" in response.json()["error"]["message"]
    config = admin.call("GET", "/v1/mm-configs/BTCUSDT").json()
    assert config["max_position_usdt"] == "10000"


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

    assert response.status_code == 400
    assert response.json()["error"]["field"] == "max_position_usdt"


@pytest.mark.parametrize(
    ("path", "body", "status", "field"),
    [
        ("/v1/mm/emergency/kill", {"symbol": 5}, 400, "symbol"),
        ("/v1/mm/emergency/kill", {"why": "x"}, 400, "why"),
        ("/v1/mm/emergency/kill", {"symbol": "btc"}, 400, "symbol"),
        ("/v1/mm/emergency/kill", {"reason": ["x"]}, 400, "reason"),
        ("/v1/mm/emergency/kill", {"reason": "x" * (validation.REASON_MAX + 1)}, 400, "reason"),
        ("/v1/mm/reset", {"symbol": "x"}, 400, "symbol"),
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
    config = config_spec.config_create(body)

    assert config.max_loss_usdt == Decimal("0.1")
    assert str(config.max_loss_usdt) == "0.1"
    assert config.order_size_usdt == Decimal("1E-7")
