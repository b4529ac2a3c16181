"""Dead letters over the API: list them (mm:read), clear one by replay or discard (mm:admin).

A dead letter is a must-deliver message whose content could not be applied
(ARCHITECTURE D24); while uncleared it holds its symbol's quotes. Clearing
is recorded in PostgreSQL with the actor, how and why (audited), and leaves
the symbol PAUSED (D31): it is enabled again by a person. A replay is done by
the symbol's worker, which polls mm_dead_letters about every second and
re-applies the stored bytes through its own decode-and-apply path; polling
needs no new control command and works while the worker or the supervisor is
restarting (the clear is in the table, and the worker reads it when it is up).
The OpenAPI entries of these routes live here too (:func:`openapi_paths`).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable
from typing import Annotated, Any

from flask import Blueprint, Response, request
from pydantic import WithJsonSchema

from mmsvc.adapters.auth import Role
from mmsvc.adapters.db.dead_letters import ClearRefusedError, DeadLetter, DeadLetterRepository
from mmsvc.adapters.db.models import DEAD_LETTER_HOW
from mmsvc.adapters.wire import Timestamp
from mmsvc.processes.admin import validation
from mmsvc.processes.admin.auth import actor, requires
from mmsvc.processes.admin.bodies import Body, respond, shared_fields
from mmsvc.processes.admin.context import ctx
from mmsvc.processes.admin.errors import ApiError
from mmsvc.processes.admin.json_schema import REQUIRED_TEXT, SYMBOL_SCHEMA, closed

log = logging.getLogger(__name__)

bp = Blueprint("dead_letters", __name__)

LIST_LIMIT = 100
ID_MAX = 2**63 - 1
_HOW = WithJsonSchema({"type": "string", "enum": list(DEAD_LETTER_HOW)})


class DeadLetterBody(Body):
    """A dead letter as the API shows it; the raw bytes in base64."""

    id: int
    symbol: str
    topic: str
    partition: int
    offset: int
    key: str | None
    value_base64: str
    reason: str
    detail: str
    created_at: Timestamp
    cleared: bool
    cleared_at: Timestamp | None
    cleared_by: str | None
    cleared_how: Annotated[str, _HOW] | None
    clear_reason: str | None
    replayed_at: Timestamp | None


class DeadLetterList(Body):
    """GET /v1/mm/dead-letters: the newest first."""

    dead_letters: list[DeadLetterBody]


def view(row: DeadLetter) -> DeadLetterBody:
    """The body of a stored dead letter."""
    return DeadLetterBody(
        **shared_fields(row, DeadLetterBody), value_base64=base64.b64encode(row.value).decode()
    )


@bp.get("/v1/mm/dead-letters")
@requires(Role.READ)
def listing() -> Response:
    """The newest dead letters (cleared ones too), of one symbol with ?symbol=."""
    symbol = request.args.get("symbol")
    if symbol is not None:
        symbol = validation.check_symbol(symbol)
    with ctx().read() as session:
        rows = DeadLetterRepository(session).recent(symbol=symbol, limit=LIST_LIMIT)
    return respond(DeadLetterList(dead_letters=[view(r) for r in rows]))


@bp.post("/v1/mm/dead-letters/<dead_letter_id>/clear")
@requires(Role.ADMIN)
def clear(dead_letter_id: str) -> Response:
    """Replay or discard one uncleared dead letter; the symbol stays PAUSED (D31)."""
    if not dead_letter_id.isdigit() or not 0 < int(dead_letter_id) <= ID_MAX:
        raise ApiError(404, "NOT_FOUND", f"no dead letter {dead_letter_id[:40]!r}")
    body = validation.json_object(request.get_data())
    validation.reject_unknown(body, {"action", "reason"})
    action = body.get("action")
    if action not in DEAD_LETTER_HOW:
        allowed = " or ".join(repr(how) for how in DEAD_LETTER_HOW)
        raise ApiError(400, "INVALID_VALUE", f"action must be {allowed}", field="action")
    reason = validation.required_text(body, "reason")
    who = actor()
    try:
        with ctx().transaction() as session:
            row = DeadLetterRepository(session).clear(
                int(dead_letter_id), how=str(action), actor=who, reason=reason
            )
    except ClearRefusedError as refused:
        status = 404 if refused.code == "NOT_FOUND" else 409
        raise ApiError(status, refused.code, str(refused)) from None
    log.warning(
        "dead letter cleared",
        extra={"actor": who, "symbol": row.symbol, "dead_letter_id": row.id, "how": action},
    )
    return respond(view(row))


# --------------------------------------------------------------------- OpenAPI

_ID_PARAM = {
    "name": "dead_letter_id",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9]{1,19}$"},
}
_QUERY_SYMBOL = {"name": "symbol", "in": "query", "required": False, "schema": SYMBOL_SCHEMA}


DEAD_LETTER_BODIES: dict[str, type] = {
    "DeadLetter": DeadLetterBody,
    "DeadLetterList": DeadLetterList,
}
"""The response bodies of these routes, by component name."""


def openapi_components() -> dict[str, dict[str, Any]]:
    """The component schema of the clear request."""
    return {
        "DeadLetterClear": closed(
            {
                "action": {"type": "string", "enum": list(DEAD_LETTER_HOW)},
                "reason": REQUIRED_TEXT,
            },
            ["action", "reason"],
        ),
    }


def openapi_paths(operation: Callable[..., dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The path items of these routes, built with openapi.py's ``_operation``."""
    listing_op = operation(
        "listDeadLetters",
        "Dead letters, newest first; an uncleared one holds its symbol's quotes (D24)",
        Role.READ,
        {200: "DeadLetterList"},
        (400,),
    )
    listing_op["parameters"] = [_QUERY_SYMBOL]
    clear_op = operation(
        "clearDeadLetter",
        "Replay or discard a dead letter (audited); the symbol stays PAUSED (D31)",
        Role.ADMIN,
        {200: "DeadLetter"},
        (400, 404, 409),
        body="DeadLetterClear",
    )
    clear_op["parameters"] = [_ID_PARAM]
    return {
        "/v1/mm/dead-letters": {"get": listing_op},
        "/v1/mm/dead-letters/{dead_letter_id}/clear": {"post": clear_op},
    }
