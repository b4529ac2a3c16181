"""Every Kafka client the service builds gets the TLS and SASL settings (issue 14)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.admin import AdminClient

from mmsvc.adapters.kafka.connection import connection_config
from mmsvc.adapters.kafka.consumer import consumer_config
from mmsvc.adapters.kafka.producer import producer_config
from mmsvc.config import Settings, load_settings

BASE = {
    "POSTGRES_URL": "postgresql://mm@127.0.0.1:1/mm",
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "KAFKA_BROKERS": "127.0.0.1:1",
    "SCHEMA_REGISTRY_URL": "http://127.0.0.1:1",
    "AUTH_SERVICE_URL": "http://127.0.0.1:1",
}
MMSVC = Path(__file__).resolve().parents[3] / "mmsvc"
SYSTEM_CA = Path("/etc/ssl/certs/ca-certificates.crt")


def sasl_settings(tmp_path: Path, protocol: str = "SASL_SSL") -> Settings:
    password = tmp_path / "kafka-password"
    password.write_text("sasl-pw\n")
    ca = tmp_path / "ca.pem"
    ca.write_bytes(SYSTEM_CA.read_bytes() if SYSTEM_CA.exists() else b"")
    env = {
        **BASE,
        "KAFKA_SECURITY_PROTOCOL": protocol,
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-256",
        "KAFKA_SASL_USERNAME": "mmsvc",
        "KAFKA_SASL_PASSWORD_FILE": str(password),
    }
    if protocol.endswith("SSL"):
        env["KAFKA_SSL_CA_LOCATION"] = str(ca)
    return load_settings(env)


def test_plaintext_by_default() -> None:
    assert connection_config(load_settings(BASE)) == {
        "bootstrap.servers": "127.0.0.1:1",
        "security.protocol": "PLAINTEXT",
    }


def test_the_login_and_ca_reach_the_consumer_and_the_producer(tmp_path: Path) -> None:
    connection = connection_config(sasl_settings(tmp_path))
    expected = {
        "bootstrap.servers": "127.0.0.1:1",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-256",
        "sasl.username": "mmsvc",
        "sasl.password": "sasl-pw",
        "ssl.ca.location": str(tmp_path / "ca.pem"),
    }
    assert connection == expected
    assert consumer_config(connection, "g").items() >= expected.items()
    assert producer_config(connection).items() >= expected.items()


@pytest.mark.skipif(not SYSTEM_CA.exists(), reason="needs a PEM bundle of CA certificates")
def test_librdkafka_accepts_the_configs_the_service_builds(tmp_path: Path) -> None:
    for protocol in ("SASL_SSL", "SASL_PLAINTEXT"):
        connection = connection_config(sasl_settings(tmp_path, protocol))
        # Construction validates every key and loads the CA file; nothing connects
        # before a call that needs the broker.
        Consumer(consumer_config(connection, "g")).close()
        Producer(producer_config(connection)).flush(0)
        AdminClient({**connection, "socket.timeout.ms": 2000})


def test_no_kafka_client_of_the_service_names_the_brokers_itself() -> None:
    # connection_config is the one place: a client config built elsewhere would
    # silently skip TLS and SASL. The dev stack (broker, simulator) is not the service.
    offenders = [
        str(path.relative_to(MMSVC))
        for path in MMSVC.rglob("*.py")
        if "devstack" not in path.parts
        and path.name != "connection.py"
        and re.search(r"[\"']bootstrap\.servers[\"']", path.read_text())
    ]
    assert offenders == []
