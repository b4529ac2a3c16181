"""The outbox relay: publishes committed events to Kafka, in order (ARCHITECTURE D16).

State changes and risk events are written to the ``outbox`` table in the same
transaction as the change itself, so an event exists if and only if the change
committed. This process publishes unsent rows in id order (per-symbol id order
is commit order, thanks to the lock on the symbol's ``mm_states`` row), with an
idempotent producer, and marks rows sent only after the broker's delivery
report. After a crash a row may be published twice; consumers de-duplicate on
``event_id``. Rows are marked sent only up to the first failure, so a failed
row is retried before anything behind it is considered done.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Sequence

from sqlalchemy.orm import Session, sessionmaker

from mmsvc.adapters import metrics
from mmsvc.adapters.db.engine import make_engine, make_session_factory
from mmsvc.adapters.db.outbox import OutboxRepository
from mmsvc.adapters.db.records import OutboxMessage
from mmsvc.adapters.kafka.codec import AvroCodec, EncodeError
from mmsvc.adapters.kafka.connection import connection_config
from mmsvc.adapters.kafka.producer import KafkaPublisher, Outgoing, producer_config
from mmsvc.config import Settings
from mmsvc.processes.bootstrap import bootstrap

log = logging.getLogger(__name__)

BATCH = 500
IDLE_WAIT_S = 0.05
ERROR_WAIT_S = 1.0


class OutboxRelay:
    """Moves outbox rows to Kafka; one ``relay_once`` is one batch."""

    def __init__(
        self, sessions: sessionmaker[Session], codec: AvroCodec, publisher: KafkaPublisher
    ) -> None:
        self._sessions = sessions
        self._codec = codec
        self._publisher = publisher

    def relay_once(self) -> int:
        """Publish the next batch of unsent rows; return how many were marked sent."""
        with self._sessions() as session:
            rows = OutboxRepository(session).fetch_unsent(BATCH)
        if not rows:
            return 0
        encoded = self._encode(rows)
        delivered = self._publisher.publish([item for _, item in encoded])
        done = _prefix_ids(encoded, delivered)
        with self._sessions.begin() as session:
            OutboxRepository(session).mark_sent(done)
        return len(done)

    def _encode(self, rows: Sequence[OutboxMessage]) -> list[tuple[int, Outgoing]]:
        encoded: list[tuple[int, Outgoing]] = []
        for row in rows:
            try:
                value = self._codec.encode(row.topic, row.payload)
            except EncodeError:
                # A row that can never be encoded would block every row behind
                # it forever; it is a bug upstream, logged loudly and stopped at.
                log.exception("outbox row does not match its schema", extra={"id": row.id})
                break
            encoded.append((row.id, Outgoing(row.topic, row.key, value)))
        return encoded

    def backlog(self) -> int:
        with self._sessions() as session:
            return OutboxRepository(session).backlog()


def _prefix_ids(encoded: Sequence[tuple[int, Outgoing]], delivered: Sequence[bool]) -> list[int]:
    done: list[int] = []
    for (row_id, _), ok in zip(encoded, delivered, strict=True):
        if not ok:
            break
        done.append(row_id)
    return done


def run(settings: Settings, stop: threading.Event) -> None:
    """Relay until ``stop`` is set; database or broker trouble only delays events."""
    engine = make_engine(
        settings.postgres_url,
        application_name="mmsvc-outbox",
        statement_timeout_s=settings.postgres_statement_timeout_s,
    )
    relay = OutboxRelay(
        make_session_factory(engine),
        AvroCodec(settings.schema_registry_url),
        KafkaPublisher(producer_config(connection_config(settings))),
    )
    next_backlog = 0.0
    while not stop.is_set():
        try:
            if time.monotonic() >= next_backlog:
                metrics.set_outbox_backlog(relay.backlog())
                next_backlog = time.monotonic() + 1.0
            sent = relay.relay_once()
        except Exception:
            log.exception("outbox relay round failed; retrying")
            stop.wait(ERROR_WAIT_S)
            continue
        if sent < BATCH:
            stop.wait(IDLE_WAIT_S)
    engine.dispose()


def main() -> None:
    """Console script ``mmsvc-outbox``."""
    settings = bootstrap("outbox")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run(settings, stop)


if __name__ == "__main__":
    main()
