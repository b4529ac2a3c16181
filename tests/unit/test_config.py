"""Settings: the spec's defaults, and one line naming the variable when one is wrong."""

from __future__ import annotations

import subprocess
import sys

import pytest

from mmsvc.config import ConfigError, load_settings, parse_duration, redact_url

BASE = {
    "POSTGRES_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/mmsvc",
    "REDIS_URL": "redis://127.0.0.1:6379/0",
    "KAFKA_BROKERS": "127.0.0.1:9092",
    "SCHEMA_REGISTRY_URL": "http://127.0.0.1:8081",
    "AUTH_SERVICE_URL": "http://127.0.0.1:4000",
}


def test_spec_defaults_apply_when_unset() -> None:
    s = load_settings(BASE)
    assert s.order_service_url == "http://localhost:3000"
    assert s.metadata_service_grpc_url == "localhost:50051"
    assert (s.http_port, s.metrics_port) == (8080, 9090)
    assert s.shadow_mode is False
    assert s.quote_update_interval_s == pytest.approx(0.1)
    assert s.max_orders_per_second == 10
    assert s.market_data_staleness_threshold_s == 5.0
    assert s.kill_switch_kafka_lag_threshold_s == 10.0
    assert s.kill_switch_reject_storm_count == 5
    assert s.kill_switch_reject_storm_window_s == 60.0
    assert s.kill_switch_response_timeout_ms == 50
    assert s.system_account_id == "00000000-0000-0000-0000-000000000001"
    assert s.kafka_group_id == "mmsvc"
    assert s.max_symbols == 200


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("100ms", 0.1), ("5s", 5.0), ("1m", 60.0), ("1m30s", 90.0), ("250us", 0.00025)],
)
def test_go_style_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


def test_missing_postgres_url_names_the_variable() -> None:
    env = {k: v for k, v in BASE.items() if k != "POSTGRES_URL"}
    with pytest.raises(ConfigError, match=r"^POSTGRES_URL is required"):
        load_settings(env)


def test_unparsable_reject_storm_window_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"^KILL_SWITCH_REJECT_STORM_WINDOW='soon' is invalid"):
        load_settings({**BASE, "KILL_SWITCH_REJECT_STORM_WINDOW": "soon"})


def test_auth_url_required_unless_auth_disabled() -> None:
    env = {k: v for k, v in BASE.items() if k != "AUTH_SERVICE_URL"}
    with pytest.raises(ConfigError, match="AUTH_SERVICE_URL"):
        load_settings(env)
    assert load_settings({**env, "DISABLE_AUTH": "true"}).auth_service_url is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("HTTP_PORT", "70000"),
        ("MAX_ORDERS_PER_SECOND", "0"),
        ("MM_SHADOW_MODE", "perhaps"),
        ("SYSTEM_ACCOUNT_ID", "not-a-uuid"),
        ("KAFKA_BROKERS", "localhost"),
        ("KILL_SWITCH_RESPONSE_TIMEOUT_MS", "fifty"),
    ],
)
def test_bad_values_name_their_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{name}="):
        load_settings({**BASE, name: value})


def test_error_never_echoes_a_password() -> None:
    with pytest.raises(ConfigError) as info:
        load_settings({**BASE, "POSTGRES_URL": "mysql://u:hunter2@db/x"})
    assert "hunter2" not in str(info.value)
    assert redact_url("postgresql://u:pw@h/d") == "postgresql://u:***@h/d"


def test_start_up_fails_with_one_line_naming_the_variable() -> None:
    env = {k: v for k, v in BASE.items() if k != "POSTGRES_URL"}
    code = "from mmsvc.config import load_or_exit; import os; load_or_exit(os.environ)"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert proc.stderr.strip().count("\n") == 0
    assert "POSTGRES_URL" in proc.stderr
