"""OutboxRepository: enqueue with the change, drain in id order, mark sent (D16)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mmsvc.adapters.db.outbox import OutboxRepository

pytestmark = pytest.mark.integration

STATE_CHANGED = "mm.state.changed.v1"
RISK = "mm.risk.triggered.v1"


def test_enqueued_events_are_fetched_unsent_in_id_order_and_marked_sent(db_session, btc):
    outbox = OutboxRepository(db_session)
    ids = [outbox.enqueue(STATE_CHANGED, btc, {"n": n, "position": "0.5"}) for n in range(3)]
    assert ids == sorted(ids)
    assert outbox.backlog() == 3
    batch = outbox.fetch_unsent(limit=2)
    assert [message.id for message in batch] == ids[:2]
    assert batch[0].payload == {"n": 0, "position": "0.5"}
    assert (batch[0].topic, batch[0].key, batch[0].sent_at) == (STATE_CHANGED, btc, None)
    assert outbox.mark_sent(message.id for message in batch) == 2
    assert outbox.mark_sent([ids[0]]) == 0
    assert outbox.mark_sent([]) == 0
    assert [message.id for message in outbox.fetch_unsent()] == ids[2:]
    assert outbox.backlog() == 1


def test_a_risk_event_for_every_symbol_has_a_null_key(db_session):
    outbox = OutboxRepository(db_session)
    outbox.enqueue(RISK, None, {"symbol": None, "trigger": "KAFKA_LAG"})
    [message] = outbox.fetch_unsent()
    assert message.key is None


def test_an_event_for_a_symbol_without_state_is_refused(db_session):
    with pytest.raises(LookupError, match="XRPUSDT"):
        OutboxRepository(db_session).enqueue(STATE_CHANGED, "XRPUSDT", {})


def test_a_decimal_in_a_payload_is_refused_before_it_reaches_the_row(db_session, btc):
    with pytest.raises(TypeError, match="Decimal"):
        OutboxRepository(db_session).enqueue(RISK, btc, {"pnl": Decimal("-1")})
