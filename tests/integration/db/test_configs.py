"""ConfigRepository: CRUD with an audit row for every write (ARCHITECTURE D5)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy.exc import IntegrityError

from mmsvc.adapters.db.audit import AuditRepository
from mmsvc.adapters.db.configs import ConfigRepository
from mmsvc.adapters.db.records import SymbolState
from mmsvc.adapters.db.states import StateRepository

pytestmark = pytest.mark.integration


def test_create_takes_the_spec_defaults_for_fields_left_out(db_session):
    created = ConfigRepository(db_session).create(
        "ETH-PERP", "alice", {"order_size_usdt": Decimal("250")}
    )
    assert created.order_size_usdt == Decimal("250")
    assert created.base_spread_bps == Decimal("10.0")
    assert created.num_levels == 1
    assert created.enabled is False
    assert created.updated_by == "alice"


def test_create_is_audited(db_session):
    ConfigRepository(db_session).create("BTCUSDT", "alice")
    [entry] = AuditRepository(db_session).recent("BTCUSDT")
    assert (entry.actor, entry.action) == ("alice", "config.create")
    assert entry.detail["new"]["max_loss_usdt"] == "500.0"


def test_create_refuses_a_symbol_that_exists(db_session):
    configs = ConfigRepository(db_session)
    configs.create("BTCUSDT", "alice")
    with pytest.raises(IntegrityError), db_session.begin_nested():
        configs.create("BTCUSDT", "bob")


def test_create_refuses_an_unknown_field(db_session):
    with pytest.raises(ValueError, match="max_leverage"):
        ConfigRepository(db_session).create("BTCUSDT", "alice", {"max_leverage": 5})


def test_get_and_list(db_session):
    configs = ConfigRepository(db_session)
    configs.create("ETHUSDT", "alice")
    configs.create("BTCUSDT", "alice")
    btc = configs.get("BTCUSDT")
    assert btc is not None
    assert btc.symbol == "BTCUSDT"
    assert configs.get("XRPUSDT") is None
    assert [config.symbol for config in configs.list()] == ["BTCUSDT", "ETHUSDT"]


def test_a_limit_raise_is_audited_with_old_and_new_values(db_session):
    configs = ConfigRepository(db_session)
    configs.create("BTCUSDT", "alice")
    updated = configs.update(
        "BTCUSDT", "risk-officer", {"max_loss_usdt": Decimal("750"), "num_levels": 1}
    )
    assert updated is not None
    assert updated.max_loss_usdt == Decimal("750")
    assert updated.updated_by == "risk-officer"
    stored = configs.get("BTCUSDT")
    assert stored is not None
    assert stored.max_loss_usdt == Decimal("750")
    latest = AuditRepository(db_session).recent("BTCUSDT")[0]
    assert latest.action == "config.update"
    assert latest.actor == "risk-officer"
    # Only what changed is recorded, decimals as strings.
    assert latest.detail == {"old": {"max_loss_usdt": "500.0"}, "new": {"max_loss_usdt": "750"}}


def test_an_update_that_changes_nothing_writes_no_audit_row(db_session):
    configs = ConfigRepository(db_session)
    configs.create("BTCUSDT", "alice")
    configs.update("BTCUSDT", "bob", {"base_spread_bps": Decimal("10")})
    assert [entry.action for entry in AuditRepository(db_session).recent("BTCUSDT")] == [
        "config.create"
    ]


def test_update_of_an_unknown_symbol_returns_none(db_session):
    assert ConfigRepository(db_session).update("BTCUSDT", "bob", {"enabled": True}) is None


def test_an_update_to_nonsense_is_refused_naming_the_field(db_session):
    configs = ConfigRepository(db_session)
    configs.create("BTCUSDT", "alice")
    with pytest.raises(ValueError, match="max_position_usdt"), db_session.begin_nested():
        configs.update("BTCUSDT", "bob", {"max_position_usdt": Decimal("-1")})
    stored = configs.get("BTCUSDT")
    assert stored is not None
    assert stored.max_position_usdt == Decimal("10000.0")


def test_delete_removes_the_config_and_its_state_and_is_audited(db_session):
    configs = ConfigRepository(db_session)
    configs.create("BTCUSDT", "alice")
    StateRepository(db_session).set("BTCUSDT", SymbolState.PAUSED, reason="new", actor="alice")
    assert configs.delete("BTCUSDT", "bob") is True
    assert configs.get("BTCUSDT") is None
    assert StateRepository(db_session).get("BTCUSDT") is None
    assert AuditRepository(db_session).recent("BTCUSDT")[0].action == "config.delete"
    assert configs.delete("BTCUSDT", "bob") is False


def test_audit_record_keeps_any_detail_as_json(db_session):
    audit = AuditRepository(db_session)
    entry_id = audit.record(
        "ops", "emergency.flatten", None, {"canceled": 3, "pnl": Decimal("-1.5")}
    )
    [entry] = audit.recent(limit=1)
    assert entry.id == entry_id
    assert entry.symbol is None
    assert entry.detail == {"canceled": 3, "pnl": "-1.5"}
