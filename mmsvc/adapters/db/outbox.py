"""The transactional outbox (ARCHITECTURE D16): events written with the change that caused them."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.orm import Session

from mmsvc.adapters.db.models import Outbox
from mmsvc.adapters.db.records import OutboxMessage
from mmsvc.adapters.db.states import StateRepository


class OutboxRepository:
    """Writes and drains the outbox inside the caller's transaction; never commits."""

    def __init__(self, session: Session) -> None:
        self._session = session

    def enqueue(self, topic: str, key: str | None, payload: Mapping[str, Any]) -> int:
        """Append an event under its symbol's mm_states row lock and return its id.

        The lock makes one symbol's ids follow commit order, so a relay that
        publishes unsent rows in id order never reorders a symbol's events (D16).
        A None key (a risk event for every symbol) takes no lock.
        """
        _require_json(payload)
        if key is not None and StateRepository(self._session).lock(key) is None:
            raise LookupError(f"no mm_states row for {key}: cannot order its outbox events")
        statement = (
            insert(Outbox).values(topic=topic, key=key, payload=dict(payload)).returning(Outbox.id)
        )
        return self._session.execute(statement).scalar_one()

    def fetch_unsent(self, limit: int = 500) -> list[OutboxMessage]:
        """The oldest unsent events, in id order (the relay's next batch)."""
        statement = (
            select(Outbox)
            .where(Outbox.sent_at.is_(None))
            .order_by(Outbox.id)
            .limit(limit)
            .execution_options(populate_existing=True)
        )
        return [_message(row) for row in self._session.scalars(statement)]

    def mark_sent(self, ids: Iterable[int]) -> int:
        """Mark events delivered (after the producer's delivery report); the number marked."""
        wanted = list(ids)
        if not wanted:
            return 0
        statement = (
            update(Outbox)
            .where(Outbox.id.in_(wanted), Outbox.sent_at.is_(None))
            .values(sent_at=func.now())
            .returning(Outbox.id)
        )
        return len(self._session.scalars(statement).all())

    def backlog(self) -> int:
        """How many events wait to be published."""
        statement = select(func.count()).select_from(Outbox).where(Outbox.sent_at.is_(None))
        return self._session.execute(statement).scalar_one()


def _require_json(payload: Mapping[str, Any]) -> None:
    # Decimals travel as strings on every wire (CONTRACTS.md); a Decimal (or
    # any other non-JSON value) here is a bug upstream, refused with its type.
    def refuse(value: object) -> None:
        raise TypeError(f"outbox payloads hold JSON values only, got {type(value).__name__}")

    json.dumps(payload, default=refuse)


def _message(row: Outbox) -> OutboxMessage:
    return OutboxMessage(
        id=row.id,
        topic=row.topic,
        key=row.key,
        payload=row.payload,
        created_at=row.created_at,
        sent_at=row.sent_at,
    )
