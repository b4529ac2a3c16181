"""The schema itself refuses nonsense, whatever code writes to it."""

from __future__ import annotations

from decimal import Decimal
from uuid import uuid4

import pytest
from sqlalchemy import insert, text, update

from mmsvc.adapters.db.models import (
    MMConfig,
    MMFill,
    MMKillSwitch,
    MMOrder,
    MMPosition,
    MMState,
    Outbox,
)
from tests.integration.db.conftest import constraint_refusing

pytestmark = pytest.mark.integration

# spec: Per-Symbol Configuration (Database), column "Default".
SPEC_DEFAULTS = {
    "enabled": False,
    "base_spread_bps": Decimal("10.0"),
    "order_size_usdt": Decimal("100.0"),
    "inventory_skew_factor": Decimal("0.5"),
    "max_position_usdt": Decimal("10000.0"),
    "max_loss_usdt": Decimal("500.0"),
    "volatility_multiplier": True,
    "num_levels": 1,
    "level_spacing_bps": Decimal("5.0"),
    "check_staleness": False,
    # Whole milliseconds, INTEGER since 0002_config_bounds.
    "staleness_threshold_ms": 1000,
    "quote_interval_ms": 100,
    "price_threshold_bps": Decimal("5.0"),
}

ORDER = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "price": Decimal("65000"),
    "quantity": Decimal("0.01"),
    "level": 0,
}
FILL = {
    "event_id": "ev-1",
    "symbol": "BTCUSDT",
    "order_id": "o-1",
    "client_order_id": "c-1",
    "side": "SELL",
    "price": Decimal("65000"),
    "quantity": Decimal("0.01"),
    "ts_ms": 1,
}


def test_a_config_inserted_with_only_its_symbol_takes_the_spec_defaults(db_session):
    db_session.execute(text("INSERT INTO mm_configs (symbol) VALUES ('BTCUSDT')"))
    row = db_session.execute(text("SELECT * FROM mm_configs")).mappings().one()
    assert {key: row[key] for key in SPEC_DEFAULTS} == SPEC_DEFAULTS
    assert all(type(row[key]) is type(value) for key, value in SPEC_DEFAULTS.items())


def test_money_columns_are_numeric_and_keep_every_digit(db_session):
    db_session.execute(
        insert(MMConfig).values(symbol="BTCUSDT", order_size_usdt=Decimal("0.1000000000000000001"))
    )
    stored = db_session.execute(text("SELECT order_size_usdt FROM mm_configs")).scalar_one()
    assert stored == Decimal("0.1000000000000000001")


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"order_size_usdt": Decimal("-1")}, "ck_mm_configs_order_size_usdt_bounds"),
        ({"order_size_usdt": Decimal("0")}, "ck_mm_configs_order_size_usdt_bounds"),
        ({"base_spread_bps": Decimal("-0.1")}, "ck_mm_configs_base_spread_bps_bounds"),
        ({"max_position_usdt": Decimal("0")}, "ck_mm_configs_max_position_usdt_bounds"),
        ({"max_loss_usdt": Decimal("-500")}, "ck_mm_configs_max_loss_usdt_bounds"),
        ({"inventory_skew_factor": Decimal("-1")}, "ck_mm_configs_inventory_skew_factor_bounds"),
        ({"num_levels": 0}, "ck_mm_configs_num_levels_bounds"),
        ({"level_spacing_bps": Decimal("-5")}, "ck_mm_configs_level_spacing_bps_bounds"),
        ({"staleness_threshold_ms": 0}, "ck_mm_configs_staleness_threshold_ms_bounds"),
        ({"quote_interval_ms": 0}, "ck_mm_configs_quote_interval_ms_bounds"),
        ({"price_threshold_bps": Decimal("-1")}, "ck_mm_configs_price_threshold_bps_bounds"),
        ({"symbol": "btc usdt"}, "ck_mm_configs_symbol_format"),
        ({"updated_by": ""}, "ck_mm_configs_updated_by_not_empty"),
    ],
)
def test_a_config_with_nonsense_is_refused(db_session, values, constraint):
    row = {"symbol": "BTCUSDT", **values}
    assert constraint_refusing(db_session, insert(MMConfig).values(**row)) == constraint


def test_a_duplicate_config_is_refused(db_session):
    db_session.execute(insert(MMConfig).values(symbol="BTCUSDT"))
    statement = insert(MMConfig).values(symbol="BTCUSDT")
    assert constraint_refusing(db_session, statement) == "pk_mm_configs"


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"state": "RUNNING"}, "ck_mm_states_state_known"),
        ({"state": "HALTED"}, "ck_mm_states_halted_has_trigger"),
        ({"state": "PAUSED", "trigger": "LOSS"}, "ck_mm_states_halted_has_trigger"),
        ({"state": "HALTED", "trigger": "OOPS"}, "ck_mm_states_trigger_known"),
        ({"state": "HALTED", "trigger": "STALE_DATA"}, "ck_mm_states_trigger_known"),
        ({"state": "PAUSED", "trigger_detail": "x"}, "ck_mm_states_detail_needs_trigger"),
        ({"symbol": "ETHUSDT"}, "fk_mm_states_symbol_mm_configs"),
    ],
)
def test_a_state_with_nonsense_is_refused(db_session, values, constraint):
    db_session.execute(insert(MMConfig).values(symbol="BTCUSDT"))
    row = {"symbol": "BTCUSDT", **values}
    assert constraint_refusing(db_session, insert(MMState).values(**row)) == constraint


def test_a_halted_state_with_a_kill_trigger_is_accepted(db_session):
    db_session.execute(insert(MMConfig).values(symbol="BTCUSDT"))
    halted = {"state": "HALTED", "trigger": "EXPOSURE", "trigger_detail": "position 12000 > 10000"}
    db_session.execute(insert(MMState).values(symbol="BTCUSDT", **halted))


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"id": 2}, "ck_mm_kill_switch_single_row"),
        ({"id": 1}, "pk_mm_kill_switch"),
    ],
)
def test_the_kill_flag_has_exactly_one_row(db_session, values, constraint):
    assert constraint_refusing(db_session, insert(MMKillSwitch).values(**values)) == constraint


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"active": True}, "ck_mm_kill_switch_active_has_trigger"),
        ({"active": True, "trigger": "EXPOSURE"}, "ck_mm_kill_switch_trigger_known"),
        ({"active": False, "trigger": "MANUAL"}, "ck_mm_kill_switch_active_has_trigger"),
    ],
)
def test_the_kill_flag_refuses_nonsense(db_session, values, constraint):
    statement = update(MMKillSwitch).where(MMKillSwitch.id == 1).values(**values)
    assert constraint_refusing(db_session, statement) == constraint


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        # A negative quantity also breaks filled <= quantity; either refusal will do.
        ({"quantity": Decimal("-0.01")}, "ck_mm_orders_filled_within_quantity"),
        ({"quantity": Decimal("0")}, "ck_mm_orders_quantity_positive"),
        ({"price": Decimal("0")}, "ck_mm_orders_price_positive"),
        ({"side": "HOLD"}, "ck_mm_orders_side_known"),
        ({"status": "OPEN"}, "ck_mm_orders_status_known"),
        ({"filled_quantity": Decimal("0.02")}, "ck_mm_orders_filled_within_quantity"),
        ({"filled_quantity": Decimal("-1")}, "ck_mm_orders_filled_quantity_not_negative"),
        ({"status": "FILLED", "filled_quantity": Decimal("0.005")}, "ck_mm_orders_filled_is_full"),
        ({"level": -1}, "ck_mm_orders_level_not_negative"),
    ],
)
def test_an_order_with_nonsense_is_refused(db_session, values, constraint):
    row = {**ORDER, "client_order_id": uuid4(), **values}
    assert constraint_refusing(db_session, insert(MMOrder).values(**row)) == constraint


def test_two_orders_never_share_an_order_id(db_session):
    db_session.execute(insert(MMOrder).values(**ORDER, client_order_id=uuid4(), order_id="o-1"))
    statement = insert(MMOrder).values(**ORDER, client_order_id=uuid4(), order_id="o-1")
    assert constraint_refusing(db_session, statement) == "uq_mm_orders_order_id"


def test_a_fill_recorded_twice_is_refused(db_session):
    db_session.execute(insert(MMFill).values(**FILL))
    assert constraint_refusing(db_session, insert(MMFill).values(**FILL)) == "uq_mm_fills_event_id"


@pytest.mark.parametrize(
    ("values", "constraint"),
    [
        ({"quantity": Decimal("-0.01")}, "ck_mm_fills_quantity_positive"),
        ({"price": Decimal("-1")}, "ck_mm_fills_price_positive"),
        ({"side": "BID"}, "ck_mm_fills_side_known"),
        ({"liquidity": "TAKE"}, "ck_mm_fills_liquidity_known"),
        ({"ts_ms": -1}, "ck_mm_fills_ts_ms_not_negative"),
        ({"event_id": ""}, "ck_mm_fills_event_id_not_empty"),
    ],
)
def test_a_fill_with_nonsense_is_refused(db_session, values, constraint):
    statement = insert(MMFill).values(**{**FILL, **values})
    assert constraint_refusing(db_session, statement) == constraint


def test_a_position_with_a_negative_entry_price_is_refused(db_session):
    statement = insert(MMPosition).values(symbol="BTCUSDT", avg_entry_price=Decimal("-1"))
    refused_by = constraint_refusing(db_session, statement)
    assert refused_by == "ck_mm_positions_avg_entry_price_not_negative"


def test_an_outbox_row_for_a_topic_we_do_not_publish_is_refused(db_session):
    statement = insert(Outbox).values(topic="md.trades.v1", key="BTCUSDT", payload={})
    assert constraint_refusing(db_session, statement) == "ck_outbox_topic_published"
