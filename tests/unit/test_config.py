"""Settings: the spec's defaults, and one line naming the variable when one is wrong."""

from __future__ import annotations

import io
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from mmsvc.config import ConfigError, Settings, load_settings, parse_duration
from mmsvc.observability.logs import JsonLogFormatter
from mmsvc.observability.redact import redact_url

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
        ("POSTGRES_POOL_URL", "mysql://127.0.0.1:6432/mmsvc"),
    ],
)
def test_bad_values_name_their_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{name}="):
        load_settings({**BASE, name: value})


def test_the_pool_url_is_optional_and_for_workers_only() -> None:
    assert load_settings(BASE).postgres_pool_url is None
    pooled = "postgresql://postgres@127.0.0.1:6432/mmsvc"
    settings = load_settings({**BASE, "POSTGRES_POOL_URL": pooled})
    assert settings.postgres_pool_url == pooled
    assert settings.postgres_url == BASE["POSTGRES_URL"]


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


def test_settings_are_frozen() -> None:
    s = load_settings(BASE)
    with pytest.raises(ValidationError):
        s.http_port = 1


@pytest.mark.parametrize(
    "name",
    [
        "QUOTE_UPDATE_INTERVAL",
        "MARKET_DATA_STALENESS_THRESHOLD",
        "KILL_SWITCH_KAFKA_LAG_THRESHOLD",
        "KILL_SWITCH_REJECT_STORM_WINDOW",
    ],
)
def test_every_duration_takes_go_syntax_and_refuses_zero(name: str) -> None:
    attribute = {
        "QUOTE_UPDATE_INTERVAL": "quote_update_interval_s",
        "MARKET_DATA_STALENESS_THRESHOLD": "market_data_staleness_threshold_s",
        "KILL_SWITCH_KAFKA_LAG_THRESHOLD": "kill_switch_kafka_lag_threshold_s",
        "KILL_SWITCH_REJECT_STORM_WINDOW": "kill_switch_reject_storm_window_s",
    }[name]
    assert getattr(load_settings({**BASE, name: "1m30s"}), attribute) == 90.0
    with pytest.raises(ConfigError, match=rf"^{name}='0s' is invalid"):
        load_settings({**BASE, name: "0s"})


def test_blank_values_count_as_unset() -> None:
    assert load_settings({**BASE, "HTTP_PORT": "  ", "LOG_LEVEL": ""}).http_port == 8080


def test_run_dir_moves_the_paths_that_default_inside_it(tmp_path: Path) -> None:
    s = load_settings({**BASE, "MMSVC_RUN_DIR": str(tmp_path)})
    assert s.worker_endpoint_dir == tmp_path / "sockets"
    assert s.prometheus_multiproc_dir == tmp_path / "prometheus"
    assert s.control_endpoint == f"ipc://{tmp_path}/control.sock"


# ------------------------------------------------------------------ security settings (issue 14)

NO_AUTH = {k: v for k, v in BASE.items() if k != "AUTH_SERVICE_URL"} | {"DISABLE_AUTH": "true"}


def secret_file(tmp_path: Path, text: str, name: str = "secret") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_security_defaults_are_plaintext_loopback_and_no_token() -> None:
    s = load_settings(BASE)
    assert s.http_host == "127.0.0.1"
    assert s.kafka_security_protocol == "PLAINTEXT"
    assert (s.kafka_sasl_mechanism, s.kafka_sasl_username, s.kafka_sasl_secret) == (None,) * 3
    assert s.kafka_ssl_ca_location is None
    assert s.order_service_token is None


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "admin.internal", "localhost"])
def test_http_host_takes_an_address_or_a_name(host: str) -> None:
    assert load_settings({**BASE, "HTTP_HOST": host}).http_host == host


@pytest.mark.parametrize("host", ["bad host", "http://x", "-x"])
def test_a_malformed_http_host_names_the_variable(host: str) -> None:
    with pytest.raises(ConfigError, match=r"^HTTP_HOST="):
        load_settings({**BASE, "HTTP_HOST": host})


def test_disabled_auth_refuses_an_auth_service_url_beside_it() -> None:
    with pytest.raises(ConfigError, match=r"^DISABLE_AUTH=true .*AUTH_SERVICE_URL") as info:
        load_settings({**BASE, "DISABLE_AUTH": "true"})
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.1.2.3", "admin.internal"])
def test_disabled_auth_refuses_a_non_loopback_bind(host: str) -> None:
    with pytest.raises(ConfigError, match=r"^DISABLE_AUTH=true refuses HTTP_HOST="):
        load_settings({**NO_AUTH, "HTTP_HOST": host})


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost"])
def test_disabled_auth_starts_on_a_loopback_bind(host: str) -> None:
    s = load_settings({**NO_AUTH, "HTTP_HOST": host})
    assert s.disable_auth
    assert s.auth_service_url is None


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL", "ssl"])
def test_kafka_protocols_without_sasl(protocol: str) -> None:
    s = load_settings({**BASE, "KAFKA_SECURITY_PROTOCOL": protocol})
    assert s.kafka_security_protocol == protocol.upper()


def test_an_unknown_kafka_protocol_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"^KAFKA_SECURITY_PROTOCOL='TLS' is invalid"):
        load_settings({**BASE, "KAFKA_SECURITY_PROTOCOL": "TLS"})


SASL = {
    "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
    "KAFKA_SASL_USERNAME": "mmsvc",
    "KAFKA_SASL_PASSWORD": "hunter2",
}


def test_a_sasl_login_is_read_whole() -> None:
    s = load_settings({**BASE, **SASL})
    assert (s.kafka_sasl_mechanism, s.kafka_sasl_username) == ("SCRAM-SHA-512", "mmsvc")
    assert s.kafka_sasl_secret is not None
    assert s.kafka_sasl_secret.get_secret_value() == "hunter2"


def test_the_sasl_password_may_come_from_a_file(tmp_path: Path) -> None:
    env = {k: v for k, v in SASL.items() if k != "KAFKA_SASL_PASSWORD"}
    path = secret_file(tmp_path, "from-a-file\n")
    s = load_settings({**BASE, **env, "KAFKA_SASL_PASSWORD_FILE": path})
    assert s.kafka_sasl_secret is not None
    assert s.kafka_sasl_secret.get_secret_value() == "from-a-file"


@pytest.mark.parametrize(
    "missing", ["KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"]
)
def test_a_sasl_protocol_needs_every_part_of_the_login(missing: str) -> None:
    env = {k: v for k, v in SASL.items() if k != missing}
    with pytest.raises(ConfigError, match=rf"^{missing}\b.* is required with KAFKA_SECURITY"):
        load_settings({**BASE, **env})


@pytest.mark.parametrize(
    "given", ["KAFKA_SASL_MECHANISM", "KAFKA_SASL_USERNAME", "KAFKA_SASL_PASSWORD"]
)
def test_a_sasl_setting_without_a_sasl_protocol_is_refused(given: str) -> None:
    with pytest.raises(ConfigError, match=rf"^{given} is set but KAFKA_SECURITY_PROTOCOL="):
        load_settings({**BASE, given: SASL[given]})


def test_an_unknown_sasl_mechanism_names_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"^KAFKA_SASL_MECHANISM='GSSAPI' is invalid"):
        load_settings({**BASE, **SASL, "KAFKA_SASL_MECHANISM": "GSSAPI"})


def test_password_and_password_file_together_are_refused(tmp_path: Path) -> None:
    path = secret_file(tmp_path, "other")
    with pytest.raises(ConfigError, match=r"^KAFKA_SASL_PASSWORD_FILE: set it or"):
        load_settings({**BASE, **SASL, "KAFKA_SASL_PASSWORD_FILE": path})


@pytest.mark.parametrize("content", [None, "", " \n"])
def test_an_unreadable_or_empty_password_file_names_the_variable(
    tmp_path: Path, content: str | None
) -> None:
    path = str(tmp_path / "absent") if content is None else secret_file(tmp_path, content)
    env = {k: v for k, v in SASL.items() if k != "KAFKA_SASL_PASSWORD"}
    with pytest.raises(ConfigError, match=r"^KAFKA_SASL_PASSWORD_FILE='.*' is invalid"):
        load_settings({**BASE, **env, "KAFKA_SASL_PASSWORD_FILE": path})


def test_the_ca_location_must_be_a_file_and_needs_tls(tmp_path: Path) -> None:
    ca = secret_file(tmp_path, "-----BEGIN CERTIFICATE-----\n", "ca.pem")
    s = load_settings({**BASE, "KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": ca})
    assert s.kafka_ssl_ca_location == Path(ca)
    with pytest.raises(ConfigError, match=r"^KAFKA_SSL_CA_LOCATION='.*absent.pem' is invalid"):
        load_settings(
            {**BASE, "KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CA_LOCATION": f"{ca}/absent.pem"}
        )
    with pytest.raises(ConfigError, match=r"^KAFKA_SSL_CA_LOCATION is set but .*PLAINTEXT"):
        load_settings({**BASE, "KAFKA_SSL_CA_LOCATION": ca})


def test_the_order_service_token_is_read_from_its_file(tmp_path: Path) -> None:
    path = secret_file(tmp_path, "tok-3f9a.b_c~\n")
    s = load_settings({**BASE, "ORDER_SERVICE_TOKEN_FILE": path})
    assert s.order_service_token is not None
    assert s.order_service_token.get_secret_value() == "tok-3f9a.b_c~"


def test_a_missing_token_file_names_the_variable_and_its_path(tmp_path: Path) -> None:
    path = str(tmp_path / "absent")
    with pytest.raises(ConfigError, match=r"^ORDER_SERVICE_TOKEN_FILE='.*absent' is invalid"):
        load_settings({**BASE, "ORDER_SERVICE_TOKEN_FILE": path})


def test_a_token_a_header_cannot_carry_is_refused_without_showing_it(tmp_path: Path) -> None:
    path = secret_file(tmp_path, "two words-hunter2")
    with pytest.raises(ConfigError, match=r"^ORDER_SERVICE_TOKEN_FILE=") as info:
        load_settings({**BASE, "ORDER_SERVICE_TOKEN_FILE": path})
    assert "hunter2" not in str(info.value)


# ------------------------------------------------------------------ no secret is ever shown

SECRETS = ("pg-pw", "otel-pw", "sasl-pw", "token-pw")


def secret_settings(tmp_path: Path) -> Settings:
    return load_settings(
        {
            **BASE,
            **SASL,
            "POSTGRES_URL": "postgresql://mm:pg-pw@db/mm",
            "OPENOBSERVE_OTLP_ENDPOINT": "https://root:otel-pw@oo.example:5080/api/default",
            "KAFKA_SASL_PASSWORD": "sasl-pw",
            "ORDER_SERVICE_TOKEN_FILE": secret_file(tmp_path, "token-pw"),
        }
    )


def test_the_settings_repr_and_str_show_no_secret(tmp_path: Path) -> None:
    s = secret_settings(tmp_path)
    for shown in (repr(s), str(s), f"{s}"):
        assert not [secret for secret in SECRETS if secret in shown], shown
    assert "postgresql://mm:***@db/mm" in repr(s)


def test_a_logged_settings_object_shows_no_secret(tmp_path: Path) -> None:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonLogFormatter("mmsvc", "test"))
    log = logging.getLogger("tests.config.secrets")
    log.addHandler(handler)
    try:
        s = secret_settings(tmp_path)
        log.warning("settings %s", s, extra={"settings": s, "sasl": s.kafka_sasl_secret})
    finally:
        log.removeHandler(handler)
    line = buffer.getvalue()
    assert "sasl_password" in line
    assert not [secret for secret in SECRETS if secret in line], line


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("KAFKA_SASL_PASSWORD", "sasl-pw"),
        ("POSTGRES_URL", "mysql://mm:pg-pw@db/mm"),
        ("OPENOBSERVE_OTLP_ENDPOINT", "ftp://root:otel-pw@oo"),
    ],
)
def test_the_config_error_shows_no_secret(name: str, value: str) -> None:
    env = {**BASE, name: value}
    with pytest.raises(ConfigError, match=rf"^{name}") as info:
        load_settings(env)
    assert not [secret for secret in SECRETS if secret in str(info.value)], str(info.value)


def test_the_start_up_error_line_shows_no_secret() -> None:
    env = {**BASE, "KAFKA_SASL_PASSWORD": "sasl-pw"}
    code = "from mmsvc.config import load_or_exit; import os; load_or_exit(os.environ)"
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("mmsvc: configuration error: KAFKA_SASL_PASSWORD is set")
    assert proc.stderr.strip().count("\n") == 0
    assert "sasl-pw" not in proc.stderr


def test_a_secret_file_that_is_not_text_is_refused_without_quoting_it(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_bytes(b"ab\xffcd")
    with pytest.raises(ConfigError, match=r"^ORDER_SERVICE_TOKEN_FILE=.*not UTF-8") as info:
        load_settings({**BASE, "ORDER_SERVICE_TOKEN_FILE": str(path)})
    assert "0xff" not in str(info.value)
