"""One frozen, validated settings object read from the environment (pydantic-settings).

Every process calls :func:`load_settings` once at start-up. Each setting is
declared once below: its variable, type, bounds, the spec's default and a
short rule an operator can act on. Durations ("100ms", "5s", "1m30s", as Go
writes them) go through one validator, :func:`parse_duration`. A missing or
malformed variable raises :class:`ConfigError` whose message is one line that
names the variable (and never shows a secret); :func:`load_or_exit` turns that
into a clean exit so an operator sees exactly what to fix and nothing else.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import sys
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit
from uuid import UUID

from pydantic import (
    AfterValidator,
    BeforeValidator,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from mmsvc.observability.redact import redact_text

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {
    "ns": 1e-9,
    "us": 1e-6,
    "µs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")
_HEADER_TOKEN = re.compile(r"^[\x21-\x7e]+$")  # visible ASCII: what a header value may carry
_SASL_PROTOCOLS = frozenset({"SASL_PLAINTEXT", "SASL_SSL"})
_TLS_PROTOCOLS = frozenset({"SSL", "SASL_SSL"})


class ConfigError(ValueError):
    """A setting is missing or malformed; the message is one line naming the variable."""


def parse_duration(text: str) -> float:
    """Parse a Go-style duration (``100ms``, ``5s``, ``1m30s``) into seconds."""
    text = text.strip()
    if not text:
        raise ValueError("empty duration")
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            raise ValueError("expected a duration such as 100ms, 5s or 1m")
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    return total


def _url(*schemes: str) -> AfterValidator:
    def check(value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc:
            raise ValueError(f"expected a {' or '.join(schemes)} URL")
        return value

    return AfterValidator(check)


def _host_port_list(value: str) -> str:
    for item in value.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("expected host:port[,host:port...]")
    return value


def _host_port(value: str) -> str:
    if "," in value:
        raise ValueError("expected one host:port")
    return _host_port_list(value)


def _host(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip("[]")))
    except ValueError:
        if _HOSTNAME.match(value) is None:
            raise ValueError("expected an IP address or a host name") from None
        return value


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` is reachable only from this machine."""
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _uuid(value: str) -> str:
    return str(UUID(value))


def _log_level(value: str) -> str:
    upper = value.upper()
    return "WARNING" if upper == "WARN" else upper


def _read_secret_file(value: str) -> str:
    # The value is a path; the setting is what the file holds (one line, as
    # Docker and Kubernetes secrets mount it). An unreadable file is a
    # ValueError so that the error names the variable and shows the path only.
    try:
        secret = Path(value).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ValueError(f"cannot read it: {exc.strerror or type(exc).__name__}") from None
    except UnicodeDecodeError:  # its message would quote a byte of the secret
        raise ValueError("it is not UTF-8 text") from None
    if not secret:
        raise ValueError("the file is empty")
    return secret


def _bearer_token(value: SecretStr) -> SecretStr:
    if _HEADER_TOKEN.match(value.get_secret_value()) is None:
        raise ValueError("the token holds a space or a character a header cannot carry")
    return value


def _readable_file(value: Path) -> Path:
    if not value.is_file():
        raise ValueError("no such file")
    return value


# KAFKA_SESSION_TIMEOUT's default, also for consumers built without settings (tests, benches).
KAFKA_SESSION_TIMEOUT_S = 6.0

# The one duration validator: a Go-style text, bounds checked by Field(ge, le).
Duration = Annotated[float, BeforeValidator(parse_duration)]
ResolvedPath = Annotated[Path, AfterValidator(Path.resolve)]
SecretFile = Annotated[SecretStr, BeforeValidator(_read_secret_file)]

_environment: ContextVar[Mapping[str, str] | None] = ContextVar(
    "mmsvc_settings_environment", default=None
)


class _Environment(PydanticBaseSettingsSource):
    """Each setting's variable from one mapping, stripped; blank counts as unset."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self._env = env

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        """The raw text of ``field``'s variable (None when unset or blank)."""
        name = _variable(field, field_name)
        raw = self._env.get(name)
        value = raw.strip() if isinstance(raw, str) else None
        return (value or None), name, False

    def __call__(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for field_name, field in self.settings_cls.model_fields.items():
            value, name, _ = self.get_field_value(field, field_name)
            if value is not None:
                found[name] = value
        return found


def _variable(field: FieldInfo, field_name: str) -> str:
    alias = field.validation_alias
    return alias if isinstance(alias, str) else field_name.upper()


def _var(name: str, rule: str, default: Any = ..., **constraints: Any) -> Any:
    """A setting read from variable ``name``; ``rule`` says what a valid value looks like."""
    return Field(default, validation_alias=name, description=rule, **constraints)


class Settings(BaseSettings):
    """Every setting of the service, validated; durations in seconds, secrets as SecretStr."""

    model_config = SettingsConfigDict(frozen=True, extra="forbid", validate_default=True)

    # The spec's variables (market-maker-service.md, "Configuration").
    postgres_url: Annotated[str, _url("postgresql", "postgresql+psycopg", "postgres")] = _var(
        "POSTGRES_URL", "a postgresql:// URL"
    )
    # D27, D32: the workers' PostgreSQL through a transaction-mode pooler (PgBouncer);
    # unset, workers connect straight to POSTGRES_URL. Migrations, the registry and
    # LISTEN always use POSTGRES_URL (they need session state).
    postgres_pool_url: (
        Annotated[str, _url("postgresql", "postgresql+psycopg", "postgres")] | None
    ) = _var("POSTGRES_POOL_URL", "a postgresql:// URL", None)
    redis_url: Annotated[str, _url("redis", "rediss", "unix")] = _var("REDIS_URL", "a redis:// URL")
    kafka_brokers: Annotated[str, AfterValidator(_host_port_list)] = _var(
        "KAFKA_BROKERS", "a comma-separated host:port list"
    )
    schema_registry_url: Annotated[str, _url("http", "https")] = _var(
        "SCHEMA_REGISTRY_URL", "an http(s):// URL"
    )
    order_service_url: Annotated[str, _url("http", "https")] = _var(
        "ORDER_SERVICE_URL", "an http(s):// URL", "http://localhost:3000"
    )
    metadata_service_grpc_url: Annotated[str, AfterValidator(_host_port)] = _var(
        "METADATA_SERVICE_GRPC_URL", "host:port", "localhost:50051"
    )
    auth_service_url: Annotated[str, _url("http", "https")] | None = _var(
        "AUTH_SERVICE_URL", "an http(s):// URL", None
    )
    disable_auth: bool = _var("DISABLE_AUTH", "true or false", False)
    http_port: int = _var("HTTP_PORT", "a port number", 8080, ge=1, le=65535)
    metrics_port: int = _var("METRICS_PORT", "a port number", 9090, ge=1, le=65535)
    shadow_mode: bool = _var("MM_SHADOW_MODE", "true or false", False)
    quote_update_interval_s: Duration = _var(
        "QUOTE_UPDATE_INTERVAL", "a duration such as 100ms", "100ms", ge=0.001, le=3600
    )
    max_orders_per_second: int = _var("MAX_ORDERS_PER_SECOND", "an integer", 10, ge=1, le=100_000)
    market_data_staleness_threshold_s: Duration = _var(
        "MARKET_DATA_STALENESS_THRESHOLD", "a duration such as 5s", "5s", ge=0.001, le=3600
    )
    kill_switch_kafka_lag_threshold_s: Duration = _var(
        "KILL_SWITCH_KAFKA_LAG_THRESHOLD", "a duration such as 10s", "10s", ge=0.001, le=3600
    )
    kill_switch_reject_storm_count: int = _var(
        "KILL_SWITCH_REJECT_STORM_COUNT", "an integer", 5, ge=1, le=100_000
    )
    kill_switch_reject_storm_window_s: Duration = _var(
        "KILL_SWITCH_REJECT_STORM_WINDOW", "a duration such as 1m", "1m", ge=0.001, le=86_400
    )
    kill_switch_response_timeout_ms: int = _var(
        "KILL_SWITCH_RESPONSE_TIMEOUT_MS", "milliseconds, an integer", 50, ge=1, le=60_000
    )
    # D22: how often a worker compares the venue's open orders with its own.
    reconcile_interval_s: Duration = _var(
        "RECONCILE_INTERVAL", "a duration such as 5s", "5s", ge=0.01, le=3600
    )
    system_account_id: Annotated[str, AfterValidator(_uuid)] = _var(
        "SYSTEM_ACCOUNT_ID", "a UUID", "00000000-0000-0000-0000-000000000001"
    )
    system_user_id: Annotated[str, AfterValidator(_uuid)] = _var(
        "SYSTEM_USER_ID", "a UUID", "00000000-0000-0000-0000-000000000001"
    )
    otlp_endpoint: Annotated[str, _url("http", "https")] | None = _var(
        "OPENOBSERVE_OTLP_ENDPOINT", "an http(s):// URL", None
    )

    # Settings the spec leaves to us (ARCHITECTURE D4, D15, D18).
    kafka_group_id: str = _var("KAFKA_GROUP_ID", "a consumer group name", "mmsvc")
    # D28, D32: how long the group waits for a silent member before giving its partitions
    # to the others. 6s is Apache Kafka's smallest by default (group.min.session.timeout.ms):
    # the takeover time of a dead host starts with it. The dev broker (Tansu) also holds a
    # new group's first join for half of it, which is why the tests run with less.
    kafka_session_timeout_s: Duration = _var(
        "KAFKA_SESSION_TIMEOUT",
        "a duration such as 6s",
        f"{KAFKA_SESSION_TIMEOUT_S:g}s",
        ge=1,
        le=300,
    )
    # D25: the longest any statement may run (a lock held elsewhere, a server that does
    # not answer), set per transaction so it works through PgBouncer (adapters/db/engine).
    postgres_statement_timeout_s: Duration = _var(
        "POSTGRES_STATEMENT_TIMEOUT", "a duration such as 5s", "5s", ge=0.1, le=3600
    )
    max_symbols: int = _var("MAX_SYMBOLS", "an integer", 200, ge=1, le=10_000)
    # D28, D29: names this host in lease owners; a symbol whose last owner was another
    # host (and ended < TAKEOVER_WINDOW ago) moved and keeps its state. Unique per host.
    host_id: str = Field(
        default_factory=socket.gethostname,
        validation_alias="MMSVC_HOST_ID",
        description="a host name, unique among the supervisors of one KAFKA_GROUP_ID",
        min_length=1,
        pattern=r"^[^/]+$",
    )
    run_dir: ResolvedPath = _var("MMSVC_RUN_DIR", "a directory path", Path(".run"))
    control_endpoint: str = Field(
        default_factory=lambda data: f"ipc://{data.get('run_dir', Path('.run'))}/control.sock",
        validation_alias="MMSVC_CONTROL_ENDPOINT",
        description="a ZeroMQ endpoint",
    )
    # D24: the control channel is ipc:// in a 0700 directory, or tcp:// only with CURVE keys.
    control_curve_dir: Path | None = _var(
        "MMSVC_CONTROL_CURVE_DIR", "a directory of CURVE keys", None
    )
    worker_endpoint_dir: ResolvedPath = Field(
        default_factory=lambda data: data.get("run_dir", Path(".run")) / "sockets",
        validation_alias="MMSVC_WORKER_SOCKET_DIR",
        description="a directory path",
    )
    prometheus_multiproc_dir: ResolvedPath = Field(
        default_factory=lambda data: data.get("run_dir", Path(".run")) / "prometheus",
        validation_alias="PROMETHEUS_MULTIPROC_DIR",
        description="a directory path",
    )
    redis_prefix: str = _var("REDIS_KEY_PREFIX", "a key prefix", "mmsvc:")
    # D25: the most one Redis call may cost its caller (connect or answer); Redis is a
    # cache, so a short one. Every loop's Redis writes run off the loop anyway.
    redis_socket_timeout_s: Duration = _var(
        "REDIS_SOCKET_TIMEOUT", "a duration such as 1s", "1s", ge=0.05, le=60
    )
    log_level: Annotated[
        Literal["DEBUG", "INFO", "WARNING", "ERROR"], BeforeValidator(_log_level)
    ] = _var("LOG_LEVEL", "a log level", "INFO")
    service_name: str = _var("SERVICE_NAME", "a service name", "mmsvc")

    # What production needs to be safe (issue 14).
    http_host: Annotated[str, AfterValidator(_host)] = _var(
        "HTTP_HOST", "the admin API's bind address", "127.0.0.1"
    )
    kafka_security_protocol: Annotated[
        Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"], BeforeValidator(str.upper)
    ] = _var("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL", "PLAINTEXT")
    kafka_sasl_mechanism: (
        Annotated[Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"], BeforeValidator(str.upper)]
        | None
    ) = _var("KAFKA_SASL_MECHANISM", "PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512", None)
    kafka_sasl_username: str | None = _var("KAFKA_SASL_USERNAME", "a user name", None)
    kafka_sasl_password: SecretStr | None = _var("KAFKA_SASL_PASSWORD", "a password", None)
    kafka_sasl_password_file: SecretFile | None = _var(
        "KAFKA_SASL_PASSWORD_FILE", "a readable file holding the password", None
    )
    kafka_ssl_ca_location: Annotated[Path, AfterValidator(_readable_file)] | None = _var(
        "KAFKA_SSL_CA_LOCATION", "a PEM file of CA certificates", None
    )
    order_service_token: Annotated[SecretFile, AfterValidator(_bearer_token)] | None = _var(
        "ORDER_SERVICE_TOKEN_FILE", "a readable file holding the Order Service bearer token", None
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        # pydantic-settings passes every default source by name; none of them is used.
        init_settings: PydanticBaseSettingsSource,  # noqa: ARG003
        env_settings: PydanticBaseSettingsSource,  # noqa: ARG003
        dotenv_settings: PydanticBaseSettingsSource,  # noqa: ARG003
        file_secret_settings: PydanticBaseSettingsSource,  # noqa: ARG003
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read only the environment ``load_settings`` was given: no .env, no secrets dir."""
        env = _environment.get()
        return (_Environment(settings_cls, env if env is not None else os.environ),)

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        for rule in (_auth_rule, _sasl_rule, _tls_rule, _control_rule):
            problem = rule(self)
            if problem is not None:
                raise ValueError(problem)
        return self

    @property
    def kill_switch_response_timeout_s(self) -> float:
        """The Order Service request budget in seconds."""
        return self.kill_switch_response_timeout_ms / 1000.0

    @property
    def kafka_sasl_secret(self) -> SecretStr | None:
        """The SASL password, from KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE."""
        return self.kafka_sasl_password or self.kafka_sasl_password_file

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        # URLs may carry a password (POSTGRES_URL, the OTLP endpoint): a repr, a
        # str() or a log line of the settings shows them redacted. SecretStr
        # fields show as '**********' on their own.
        for name, value in super().__repr_args__():
            yield name, redact_text(value) if isinstance(value, str) else value


def _control_rule(s: Settings) -> str | None:
    endpoint = s.control_endpoint
    if not endpoint.startswith(("ipc://", "tcp://")):
        return f"MMSVC_CONTROL_ENDPOINT={endpoint!r} is invalid: ipc:// or tcp://"
    if endpoint.startswith("tcp://") and s.control_curve_dir is None:
        return (
            f"MMSVC_CONTROL_ENDPOINT={endpoint!r} is refused: tcp:// needs CURVE keys "
            "(MMSVC_CONTROL_CURVE_DIR), otherwise use ipc://"
        )
    return None


def _auth_rule(s: Settings) -> str | None:
    if not s.disable_auth:
        if s.auth_service_url is None:
            return "AUTH_SERVICE_URL is required (or set DISABLE_AUTH=true for local use)"
        return None
    if s.auth_service_url is not None:
        return (
            "DISABLE_AUTH=true refuses to start beside AUTH_SERVICE_URL: "
            "unset one of them (an auth service configured means auth is wanted)"
        )
    if not is_loopback(s.http_host):
        return (
            f"DISABLE_AUTH=true refuses HTTP_HOST={s.http_host!r}: without auth the admin API "
            "may listen on a loopback address only (127.0.0.1, ::1, localhost)"
        )
    return None


def _sasl_rule(s: Settings) -> str | None:
    protocol = s.kafka_security_protocol
    if s.kafka_sasl_password is not None and s.kafka_sasl_password_file is not None:
        return "KAFKA_SASL_PASSWORD_FILE: set it or KAFKA_SASL_PASSWORD, not both"
    given = {
        "KAFKA_SASL_MECHANISM": s.kafka_sasl_mechanism,
        "KAFKA_SASL_USERNAME": s.kafka_sasl_username,
        "KAFKA_SASL_PASSWORD": s.kafka_sasl_secret,
    }
    if protocol in _SASL_PROTOCOLS:
        for name, value in given.items():
            if value is None:
                suffix = " (or KAFKA_SASL_PASSWORD_FILE)" if name == "KAFKA_SASL_PASSWORD" else ""
                return f"{name}{suffix} is required with KAFKA_SECURITY_PROTOCOL={protocol}"
        return None
    for name, value in given.items():
        if value is not None:
            # A forgotten protocol would connect in plain text and ignore the login.
            return f"{name} is set but KAFKA_SECURITY_PROTOCOL={protocol} uses no SASL"
    return None


def _tls_rule(s: Settings) -> str | None:
    protocol = s.kafka_security_protocol
    if s.kafka_ssl_ca_location is not None and protocol not in _TLS_PROTOCOLS:
        return f"KAFKA_SSL_CA_LOCATION is set but KAFKA_SECURITY_PROTOCOL={protocol} uses no TLS"
    return None


def _one_line(error: ValidationError, env: Mapping[str, str]) -> str:
    """The first problem as one line that names its variable and shows no secret."""
    first = error.errors(include_url=False)[0]
    detail = str(first["msg"]).removeprefix("Value error, ").replace("\n", " ")
    if not first["loc"]:  # a rule across variables: its message names them
        return detail
    name = str(first["loc"][0])
    field = _BY_VARIABLE.get(name)
    rule = field.description if field is not None else "see the README"
    if first["type"] == "missing":
        return f"{name} is required ({rule})"
    # A secret's value is never shown; a *_FILE variable's value is its path.
    secret = (
        field is not None and "SecretStr" in str(field.annotation) and not name.endswith("_FILE")
    )
    shown = "***" if secret else redact_text(str(env.get(name, "")).strip())
    return f"{name}={shown!r} is invalid: {rule} ({detail})"


_BY_VARIABLE: dict[str, FieldInfo] = {
    _variable(field, name): field for name, field in Settings.model_fields.items()
}


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build and validate :class:`Settings` from an environment mapping."""
    token = _environment.set(env)
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, env)) from None
    finally:
        _environment.reset(token)


def load_or_exit(env: Mapping[str, str]) -> Settings:
    """Load settings or stop the process with one line naming the variable."""
    try:
        return load_settings(env)
    except ConfigError as exc:
        print(f"mmsvc: configuration error: {exc}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None
