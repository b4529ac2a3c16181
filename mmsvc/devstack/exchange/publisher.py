"""The simulator's Kafka side: records queued in order, encoded and produced by one thread.

The venue queues records while it holds its lock, so queue order is the order
things happened; this thread keeps Avro encoding and produce calls out of that
lock. Nothing is dropped: a full producer queue is waited out.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import Any, Protocol

from confluent_kafka import KafkaError, Message, Producer

log = logging.getLogger(__name__)


class Encoder(Protocol):
    """Encodes a record of a topic in the Confluent Avro wire format."""

    def encode(self, topic: str, record: Any) -> bytes: ...


_STOP = object()


class KafkaSink(threading.Thread):
    """A Sink for the venue: ``put`` never blocks; the thread encodes and produces in order."""

    def __init__(self, brokers: str, encoder: Encoder) -> None:
        super().__init__(name="kafka-sink", daemon=True)
        self.encoder = encoder
        self.producer = Producer(
            {
                "bootstrap.servers": brokers,
                "linger.ms": 2,
                "enable.idempotence": True,
                "partitioner": "murmur2_random",  # as every TradeX producer (CONTRACTS.md, D32)
            }
        )
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self.produced = 0
        self.failed = 0

    def put(self, topic: str, key: str, record: dict[str, Any]) -> None:
        """Queue ``record`` for ``topic`` keyed by ``key``."""
        self._queue.put((topic, key, record))

    def run(self) -> None:
        """Encode and produce until ``close``; a record that will not encode is logged."""
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            topic, key, record = item
            try:
                value = self.encoder.encode(topic, record)
            except Exception:
                self.failed += 1
                log.exception("cannot encode a %s record: %r", topic, record)
                continue
            self._produce(topic, key.encode(), value)

    def _produce(self, topic: str, key: bytes, value: bytes) -> None:
        while True:
            try:
                self.producer.produce(topic, value, key, on_delivery=self._report)
                break
            except BufferError:
                self.producer.poll(0.05)
        self.producer.poll(0)

    def _report(self, error: KafkaError | None, _message: Message) -> None:
        if error is None:
            self.produced += 1
        else:
            self.failed += 1
            log.warning("delivery failed: %s", error)

    def close(self, timeout_s: float = 5.0) -> None:
        """Send what is queued, then flush the producer."""
        self._queue.put(_STOP)
        self.join(timeout_s)
        self.producer.flush(timeout_s)
