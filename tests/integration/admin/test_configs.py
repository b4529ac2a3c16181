"""Config reads over HTTP, and config writes refused cleanly while no supervisor runs (D4, D7)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from mmsvc.adapters.db.configs import ConfigRepository
from mmsvc.adapters.db.records import SymbolState
from tests.integration.admin.conftest import READ, Admin, seed_config

pytestmark = pytest.mark.integration

# Decimals in their one wire form: plain, no trailing zeros (issue 11).
DEFAULTS = {
    "symbol": "BTCUSDT",
    "enabled": False,
    "base_spread_bps": "10",
    "order_size_usdt": "100",
    "inventory_skew_factor": "0.5",
    "max_position_usdt": "10000",
    "max_loss_usdt": "500",
    "volatility_multiplier": True,
    "num_levels": 1,
    "level_spacing_bps": "5",
    "check_staleness": False,
    "staleness_threshold_ms": 1000,  # whole milliseconds (issue 11)
    "quote_interval_ms": 100,
    "price_threshold_bps": "5",
    "updated_by": "seed",
}


def test_list_is_empty_without_configs(admin: Admin) -> None:
    response = admin.call("GET", "/v1/mm-configs", token=READ)

    assert response.status_code == 200
    assert response.json() == {"configs": []}


def test_list_shows_every_config_by_symbol_with_decimals_as_strings(
    admin: Admin, db_engine: Engine
) -> None:
    seed_config(db_engine, "ETHUSDT", max_position_usdt=Decimal("12345.678901234567890123"))
    seed_config(db_engine, "BTCUSDT")

    configs = admin.call("GET", "/v1/mm-configs", token=READ).json()["configs"]

    assert [c["symbol"] for c in configs] == ["BTCUSDT", "ETHUSDT"]
    btc, eth = configs
    assert {k: btc[k] for k in DEFAULTS} == DEFAULTS
    assert eth["max_position_usdt"] == "12345.678901234567890123"
    assert btc["created_at"].endswith("+00:00")


def test_get_one_config(admin: Admin, db_engine: Engine) -> None:
    seed_config(db_engine, "SOL-PERP", num_levels=3)

    response = admin.call("GET", "/v1/mm-configs/SOL-PERP", token=READ)

    assert response.status_code == 200
    assert response.json()["num_levels"] == 3


def test_get_unknown_symbol_is_404_naming_the_symbol(admin: Admin) -> None:
    response = admin.call("GET", "/v1/mm-configs/DOGEUSDT", token=READ)

    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "UNKNOWN_SYMBOL", "message": "no config for DOGEUSDT", "field": "symbol"}
    }


@pytest.mark.parametrize("symbol", ["btcusdt", "B", "BTC_USDT", "A" * 17, "BTC-USDT-X"])
def test_get_malformed_symbol_is_400_with_the_rule(admin: Admin, symbol: str) -> None:
    response = admin.call("GET", f"/v1/mm-configs/{symbol}", token=READ)

    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("INVALID_FORMAT", "symbol")
    assert "^[A-Z0-9]{2,16}(-[A-Z0-9]{2,16})?$" in error["message"]


def test_create_without_a_supervisor_is_503_and_writes_nothing(
    admin: Admin, db_engine: Engine
) -> None:
    response = admin.call("POST", "/v1/mm-configs", body={"symbol": "BTCUSDT"})

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "SUPERVISOR_UNAVAILABLE"
    with db_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM mm_configs")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM mm_audit")).scalar() == 0


def test_create_of_an_existing_symbol_is_409_without_asking_the_supervisor(
    admin: Admin, db_engine: Engine
) -> None:
    seed_config(db_engine, "BTCUSDT")

    response = admin.call("POST", "/v1/mm-configs", body={"symbol": "BTCUSDT"})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "CONFIG_EXISTS"


def test_create_beyond_max_symbols_is_409(admin: Admin, db_engine: Engine) -> None:
    for symbol in ("AAUSDT", "BBUSDT", "CCUSDT", "DDUSDT", "EEUSDT"):  # MAX_SYMBOLS=5
        seed_config(db_engine, symbol)

    response = admin.call("POST", "/v1/mm-configs", body={"symbol": "FFUSDT"})

    assert response.status_code == 409
    assert response.json()["error"]["code"] == "MAX_SYMBOLS"


def test_update_without_a_supervisor_is_503_and_changes_nothing(
    admin: Admin, db_engine: Engine
) -> None:
    seed_config(db_engine, "BTCUSDT")

    response = admin.call("PUT", "/v1/mm-configs/BTCUSDT", body={"max_loss_usdt": "1000"})

    assert response.status_code == 503
    with Session(db_engine) as session:
        config = ConfigRepository(session).get("BTCUSDT")
    assert config is not None
    assert config.max_loss_usdt == Decimal("500.0")


@pytest.mark.parametrize("state", [SymbolState.ACTIVE, SymbolState.HALTED])
def test_delete_is_refused_while_active_or_halted_with_the_state(
    admin: Admin, db_engine: Engine, state: SymbolState
) -> None:
    seed_config(db_engine, "BTCUSDT", state)

    response = admin.call("DELETE", "/v1/mm-configs/BTCUSDT")

    assert response.status_code == 409
    assert response.json()["state"] == state.value
    assert response.json()["error"]["code"] == "NOT_IDLE"


def test_delete_without_a_supervisor_is_503_and_keeps_the_config(
    admin: Admin, db_engine: Engine
) -> None:
    seed_config(db_engine, "BTCUSDT")

    assert admin.call("DELETE", "/v1/mm-configs/BTCUSDT").status_code == 503
    assert admin.call("GET", "/v1/mm-configs/BTCUSDT", token=READ).status_code == 200


def test_delete_of_an_unknown_symbol_is_404(admin: Admin) -> None:
    assert admin.call("DELETE", "/v1/mm-configs/DOGEUSDT").status_code == 404
