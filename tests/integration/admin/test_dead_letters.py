"""GET /v1/mm/dead-letters (mm:read), POST .../{id}/clear (mm:admin): audited, once (D24, D31)."""

from __future__ import annotations

import base64

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from mmsvc.adapters.db.audit import AuditRepository
from mmsvc.adapters.db.dead_letters import DeadLetterRepository
from mmsvc.processes.admin.validation import REASON_MAX
from tests.integration.admin.conftest import ADMIN_SUBJECT, OPERATE, READ, Admin

pytestmark = pytest.mark.integration

RAW = b"\x00\x00\x00\x00\x07not-a-fill"


def dead_letter(db_engine: Engine, symbol: str = "BTCUSDT", offset: int = 3) -> int:
    with Session(db_engine) as session, session.begin():
        row_id = DeadLetterRepository(session).add(
            symbol=symbol,
            topic="engine.event.v1",
            partition=1,
            offset=offset,
            key=symbol,
            value=RAW,
            reason="negative_quantity",
            detail="fill_quantity '-1' must be > 0",
        )
    assert row_id is not None
    return row_id


def test_dead_letters_are_listed_with_their_bytes(admin: Admin, db_engine: Engine) -> None:
    first = dead_letter(db_engine)
    dead_letter(db_engine, "ETHUSDT", offset=4)

    everything = admin.call("GET", "/v1/mm/dead-letters", token=READ)
    only_btc = admin.call("GET", "/v1/mm/dead-letters?symbol=BTCUSDT", token=READ)

    assert everything.status_code == 200
    assert len(everything.json()["dead_letters"]) == 2
    [row] = only_btc.json()["dead_letters"]
    assert row["id"] == first
    assert row["reason"] == "negative_quantity"
    assert base64.b64decode(row["value_base64"]) == RAW
    assert row["cleared"] is False
    assert (row["partition"], row["offset"]) == (1, 3)
    assert admin.call("GET", "/v1/mm/dead-letters?symbol=bad!", token=READ).status_code == 400


def test_clearing_needs_admin_is_audited_and_happens_once(admin: Admin, db_engine: Engine) -> None:
    row_id = dead_letter(db_engine)
    path = f"/v1/mm/dead-letters/{row_id}/clear"
    body = {"action": "discard", "reason": "venue sent garbage; position checked by hand"}

    assert admin.call("POST", path, token=OPERATE, body=body).status_code == 403
    cleared = admin.call("POST", path, body=body)
    again = admin.call("POST", path, body={"action": "replay", "reason": "again"})

    assert cleared.status_code == 200, cleared.text
    assert cleared.json()["cleared_how"] == "discard"
    assert cleared.json()["cleared_by"] == ADMIN_SUBJECT
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "ALREADY_CLEARED"
    with Session(db_engine) as session:
        assert DeadLetterRepository(session).uncleared_count("BTCUSDT") == 0
        entry = AuditRepository(session).recent("BTCUSDT")[0]
    assert entry.action == "dead_letter_discard"
    assert entry.actor == ADMIN_SUBJECT


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v1/mm/dead-letters/999999/clear", {"action": "discard", "reason": "x"}, 404),
        ("/v1/mm/dead-letters/abc/clear", {"action": "discard", "reason": "x"}, 404),
        ("/v1/mm/dead-letters/1/clear", {"action": "delete", "reason": "x"}, 400),
        ("/v1/mm/dead-letters/1/clear", {"action": "replay"}, 400),
        ("/v1/mm/dead-letters/1/clear", {"action": "replay", "reason": "  "}, 400),
        (
            "/v1/mm/dead-letters/1/clear",
            {"action": "replay", "reason": "x" * (REASON_MAX + 1)},
            400,
        ),
        ("/v1/mm/dead-letters/1/clear", {"action": "replay", "reason": "x", "more": 1}, 400),
    ],
)
def test_bad_clears_are_refused(
    admin: Admin, db_engine: Engine, path: str, body: dict[str, object], status: int
) -> None:
    dead_letter(db_engine)
    assert admin.call("POST", path, body=body).status_code == status
