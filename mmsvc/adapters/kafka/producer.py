"""Publishing to Kafka with delivery reports (used by the outbox relay and shadow quotes)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

log = logging.getLogger(__name__)


def producer_config(
    connection: Mapping[str, Any], *, idempotent: bool = True, **overrides: Any
) -> dict[str, Any]:
    """The producer settings on ``connection`` (connection_config); idempotent by default,
    so a retried send never duplicates or reorders within a partition."""
    return {
        **connection,
        "enable.idempotence": idempotent,
        # D32: a key's partition is murmur2, as the Java client's (librdkafka's
        # default, consistent_random, is CRC32 and would put a symbol elsewhere).
        "partitioner": "murmur2_random",
        "linger.ms": 2,
        "message.timeout.ms": 10_000,
        **overrides,
    }


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One message to publish: topic, key (None for an all-symbol event), encoded value."""

    topic: str
    key: str | None
    value: bytes


class KafkaPublisher:
    """Publishes batches and reports, per message, whether the broker took it."""

    def __init__(self, config: dict[str, Any]) -> None:
        self._producer = Producer(config)

    def publish(self, batch: Sequence[Outgoing], timeout_s: float = 10.0) -> list[bool]:
        """Send ``batch`` in order and wait for every delivery report (False: not delivered)."""
        results: list[bool | None] = [None] * len(batch)

        def reporter(index: int) -> Any:
            def report(error: KafkaError | None, _message: Message) -> None:
                results[index] = error is None
                if error is not None:
                    log.warning("kafka delivery failed", extra={"error": str(error)})

            return report

        for index, item in enumerate(batch):
            key = None if item.key is None else item.key.encode()
            try:
                self._producer.produce(item.topic, item.value, key, on_delivery=reporter(index))
            except BufferError:
                self._producer.flush(timeout_s)
                self._producer.produce(item.topic, item.value, key, on_delivery=reporter(index))
        self._producer.flush(timeout_s)
        return [bool(result) for result in results]

    def send_nowait(self, topic: str, key: str | None, value: bytes) -> None:
        """Fire and forget (shadow quotes): never blocks the caller's loop."""
        try:
            self._producer.produce(topic, value, None if key is None else key.encode())
        except BufferError:
            log.warning("kafka producer queue full; dropped", extra={"topic": topic})
        self._producer.poll(0)

    def close(self, timeout_s: float = 5.0) -> None:
        self._producer.flush(timeout_s)
