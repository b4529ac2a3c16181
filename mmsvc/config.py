"""One frozen, validated settings object read from the environment.

Every process calls :func:`load_settings` once at start-up. A missing or
malformed variable raises :class:`ConfigError` whose message is one line that
names the variable; :func:`load_or_exit` turns that into a clean exit so an
operator sees exactly what to fix and nothing else.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn, TypeVar
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

T = TypeVar("T")

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
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable."""


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of the service, validated; durations in seconds."""

    postgres_url: str
    redis_url: str
    kafka_brokers: str
    schema_registry_url: str
    auth_service_url: str | None
    disable_auth: bool
    order_service_url: str = "http://localhost:3000"
    metadata_service_grpc_url: str = "localhost:50051"
    http_port: int = 8080
    metrics_port: int = 9090
    shadow_mode: bool = False
    quote_update_interval_s: float = 0.1
    max_orders_per_second: int = 10
    market_data_staleness_threshold_s: float = 5.0
    kill_switch_kafka_lag_threshold_s: float = 10.0
    kill_switch_reject_storm_count: int = 5
    kill_switch_reject_storm_window_s: float = 60.0
    kill_switch_response_timeout_ms: int = 50
    system_account_id: str = "00000000-0000-0000-0000-000000000001"
    system_user_id: str = "00000000-0000-0000-0000-000000000001"
    otlp_endpoint: str | None = None
    # Settings the spec leaves to us (ARCHITECTURE D4, D15, D18).
    kafka_group_id: str = "mmsvc"
    max_symbols: int = 200
    run_dir: Path = field(default_factory=lambda: Path(".run").resolve())
    control_endpoint: str = ""
    control_curve_dir: Path | None = None  # CURVE keys, required for a tcp:// control endpoint
    worker_endpoint_dir: Path = field(default_factory=lambda: Path(".run/sockets").resolve())
    prometheus_multiproc_dir: Path = field(
        default_factory=lambda: Path(".run/prometheus").resolve()
    )
    redis_prefix: str = "mmsvc:"
    log_level: str = "INFO"
    service_name: str = "mmsvc"

    @property
    def kill_switch_response_timeout_s(self) -> float:
        """The Order Service request budget in seconds."""
        return self.kill_switch_response_timeout_ms / 1000.0


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


def redact_url(url: str) -> str:
    """Return the URL with any password replaced, safe to print or log."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class _Reader:
    """Reads typed values from an environment mapping, naming the variable on error."""

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env

    def raw(self, name: str) -> str | None:
        value = self._env.get(name)
        return None if value is None or value.strip() == "" else value.strip()

    def required(self, name: str, hint: str) -> str:
        value = self.raw(name)
        if value is None:
            raise ConfigError(f"{name} is required ({hint})")
        return value

    def parsed(self, name: str, default: T, parse: Callable[[str], T], rule: str) -> T:
        value = self.raw(name)
        if value is None:
            return default
        try:
            return parse(value)
        except ValueError as exc:
            shown = redact_url(value)
            raise ConfigError(f"{name}={shown!r} is invalid: {rule} ({exc})") from None

    def boolean(self, name: str, default: bool) -> bool:
        return self.parsed(name, default, _parse_bool, "expected true or false")

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        return self.parsed(
            name, default, lambda v: _in_range(int(v), low, high), f"an integer in [{low}, {high}]"
        )

    def duration(self, name: str, default: float, low: float, high: float) -> float:
        return self.parsed(
            name,
            default,
            lambda v: _in_range(parse_duration(v), low, high),
            f"a duration between {low:g}s and {high:g}s",
        )


def _parse_bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _in_range(value: T, low: float, high: float) -> T:
    if not low <= value <= high:  # type: ignore[operator]
        raise ValueError("out of range")
    return value


def _uuid(value: str) -> str:
    return str(UUID(value))


def _url(*schemes: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in schemes or not parts.netloc:
            raise ValueError(f"expected a {' or '.join(schemes)} URL")
        return value

    return check


def _host_port_list(value: str) -> str:
    for item in value.split(","):
        host, sep, port = item.strip().rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("expected host:port[,host:port...]")
    return value


def _host_port(value: str) -> str:
    return _host_port_list(value) if "," not in value else _fail("expected one host:port")


def _fail(message: str) -> NoReturn:
    raise ValueError(message)


def _log_level(value: str) -> str:
    upper = value.upper()
    if upper not in {"DEBUG", "INFO", "WARNING", "WARN", "ERROR"}:
        raise ValueError("expected DEBUG, INFO, WARNING or ERROR")
    return "WARNING" if upper == "WARN" else upper


def _check_control_endpoint(endpoint: str, curve_dir: Path | None) -> None:
    """D24: the control channel is ipc:// (a 0700 directory), or tcp:// only with CURVE keys."""
    if endpoint.startswith("tcp://") and curve_dir is None:
        raise ConfigError(
            f"MMSVC_CONTROL_ENDPOINT={endpoint!r} is refused: tcp:// needs CURVE keys "
            "(MMSVC_CONTROL_CURVE_DIR), otherwise use ipc://"
        )
    if not endpoint.startswith(("ipc://", "tcp://")):
        raise ConfigError(f"MMSVC_CONTROL_ENDPOINT={endpoint!r} is invalid: ipc:// or tcp://")


def load_settings(env: Mapping[str, str]) -> Settings:
    """Build and validate :class:`Settings` from an environment mapping."""
    r = _Reader(env)
    postgres_url = r.parsed(
        "POSTGRES_URL",
        r.required("POSTGRES_URL", "a postgresql:// URL"),
        _url("postgresql", "postgresql+psycopg", "postgres"),
        "a postgresql:// URL",
    )
    disable_auth = r.boolean("DISABLE_AUTH", False)
    auth_url = (
        None
        if disable_auth
        else r.required("AUTH_SERVICE_URL", "or set DISABLE_AUTH=true for local use")
    )
    run_dir = r.parsed("MMSVC_RUN_DIR", Path(".run"), Path, "a directory path").resolve()
    control_endpoint = r.raw("MMSVC_CONTROL_ENDPOINT") or f"ipc://{run_dir}/control.sock"
    control_curve_dir = r.parsed("MMSVC_CONTROL_CURVE_DIR", None, Path, "a directory path")
    _check_control_endpoint(control_endpoint, control_curve_dir)
    return Settings(
        postgres_url=postgres_url,
        redis_url=r.parsed(
            "REDIS_URL",
            r.required("REDIS_URL", "a redis:// URL"),
            _url("redis", "rediss", "unix"),
            "a redis:// URL",
        ),
        kafka_brokers=r.parsed(
            "KAFKA_BROKERS",
            r.required("KAFKA_BROKERS", "host:port[,host:port]"),
            _host_port_list,
            "a comma-separated host:port list",
        ),
        schema_registry_url=r.parsed(
            "SCHEMA_REGISTRY_URL",
            r.required("SCHEMA_REGISTRY_URL", "an http:// URL"),
            _url("http", "https"),
            "an http(s):// URL",
        ),
        auth_service_url=None
        if auth_url is None
        else r.parsed("AUTH_SERVICE_URL", auth_url, _url("http", "https"), "an http(s):// URL"),
        disable_auth=disable_auth,
        order_service_url=r.parsed(
            "ORDER_SERVICE_URL", "http://localhost:3000", _url("http", "https"), "an http(s) URL"
        ),
        metadata_service_grpc_url=r.parsed(
            "METADATA_SERVICE_GRPC_URL", "localhost:50051", _host_port, "host:port"
        ),
        http_port=r.integer("HTTP_PORT", 8080, 1, 65535),
        metrics_port=r.integer("METRICS_PORT", 9090, 1, 65535),
        shadow_mode=r.boolean("MM_SHADOW_MODE", False),
        quote_update_interval_s=r.duration("QUOTE_UPDATE_INTERVAL", 0.1, 0.001, 3600),
        max_orders_per_second=r.integer("MAX_ORDERS_PER_SECOND", 10, 1, 100_000),
        market_data_staleness_threshold_s=r.duration(
            "MARKET_DATA_STALENESS_THRESHOLD", 5.0, 0.001, 3600
        ),
        kill_switch_kafka_lag_threshold_s=r.duration(
            "KILL_SWITCH_KAFKA_LAG_THRESHOLD", 10.0, 0.001, 3600
        ),
        kill_switch_reject_storm_count=r.integer("KILL_SWITCH_REJECT_STORM_COUNT", 5, 1, 100_000),
        kill_switch_reject_storm_window_s=r.duration(
            "KILL_SWITCH_REJECT_STORM_WINDOW", 60.0, 0.001, 86_400
        ),
        kill_switch_response_timeout_ms=r.integer("KILL_SWITCH_RESPONSE_TIMEOUT_MS", 50, 1, 60_000),
        system_account_id=r.parsed(
            "SYSTEM_ACCOUNT_ID", "00000000-0000-0000-0000-000000000001", _uuid, "a UUID"
        ),
        system_user_id=r.parsed(
            "SYSTEM_USER_ID", "00000000-0000-0000-0000-000000000001", _uuid, "a UUID"
        ),
        otlp_endpoint=r.parsed(
            "OPENOBSERVE_OTLP_ENDPOINT", None, _url("http", "https"), "an http(s):// URL"
        ),
        kafka_group_id=r.raw("KAFKA_GROUP_ID") or "mmsvc",
        max_symbols=r.integer("MAX_SYMBOLS", 200, 1, 10_000),
        run_dir=run_dir,
        control_endpoint=control_endpoint,
        control_curve_dir=control_curve_dir,
        worker_endpoint_dir=r.parsed(
            "MMSVC_WORKER_SOCKET_DIR", run_dir / "sockets", Path, "a directory path"
        ).resolve(),
        prometheus_multiproc_dir=r.parsed(
            "PROMETHEUS_MULTIPROC_DIR", run_dir / "prometheus", Path, "a directory path"
        ).resolve(),
        redis_prefix=r.raw("REDIS_KEY_PREFIX") or "mmsvc:",
        log_level=r.parsed("LOG_LEVEL", "INFO", _log_level, "a log level"),
        service_name=r.raw("SERVICE_NAME") or "mmsvc",
    )


def load_or_exit(env: Mapping[str, str]) -> Settings:
    """Load settings or stop the process with one line naming the variable."""
    try:
        return load_settings(env)
    except ConfigError as exc:
        print(f"mmsvc: configuration error: {exc}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from None
