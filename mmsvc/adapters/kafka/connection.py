"""How every Kafka client of the service reaches the brokers: addresses, TLS and SASL.

The consumer, the producers and the admin client all start from
:func:`connection_config`, so a TLS or SASL setting (issue 14) can never be
forgotten by one of them.
"""

from __future__ import annotations

from typing import Any

from mmsvc.config import Settings


def connection_config(settings: Settings) -> dict[str, Any]:
    """librdkafka's connection settings: bootstrap servers, security protocol, SASL login, CA."""
    config: dict[str, Any] = {
        "bootstrap.servers": settings.kafka_brokers,
        "security.protocol": settings.kafka_security_protocol,
    }
    # Settings already refused a half-configured login (config._sasl_rule).
    password = settings.kafka_sasl_secret
    if settings.kafka_sasl_mechanism is not None and password is not None:
        config["sasl.mechanism"] = settings.kafka_sasl_mechanism
        config["sasl.username"] = settings.kafka_sasl_username
        config["sasl.password"] = password.get_secret_value()
    if settings.kafka_ssl_ca_location is not None:
        config["ssl.ca.location"] = str(settings.kafka_ssl_ca_location)
    return config
