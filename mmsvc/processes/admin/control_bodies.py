"""The bodies of the emergency controls: the kill's and the reset's requests, and their answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from mmsvc.processes.admin.bodies import Body
from mmsvc.processes.admin.validation import check_symbol, optional_text, reject_unknown


@dataclass(frozen=True, slots=True)
class KillRequest:
    """POST /v1/mm/emergency/kill: every symbol, or the one named."""

    symbol: str | None
    reason: str | None


def kill_request(body: Mapping[str, Any]) -> KillRequest:
    """The optional kill body {symbol?, reason?}."""
    reject_unknown(body, {"symbol", "reason"})
    symbol = body.get("symbol")
    return KillRequest(
        None if symbol is None else check_symbol(symbol), optional_text(body, "reason")
    )


def reset_request(body: Mapping[str, Any]) -> str | None:
    """The optional reset body {symbol?}: the symbol, or None for every HALTED symbol."""
    reject_unknown(body, {"symbol"})
    symbol = body.get("symbol")
    return None if symbol is None else check_symbol(symbol)


class KillResult(Body):
    """POST /v1/mm/emergency/kill: who carried it out and what PostgreSQL shows since."""

    scope: Literal["ALL", "SYMBOL"]
    symbol: str | None
    handled_by: Literal["supervisor", "admin"]
    kill_switch_active: bool
    halted: list[str]
    no_answer: list[str]
    orders_flat: bool | None  # null: the supervisor did it (its workers report flat themselves)


class ResetResult(Body):
    """POST /v1/mm/reset: what was reset, what was refused and why; 409 when nothing was."""

    reset: list[str]
    refused: dict[str, str]
    no_answer: list[str]
    global_flag_cleared: bool
    reason: str | None


class CommandSummary(Body):
    """POST /v1/mm/emergency/flatten: the symbols that did it, refused or did not answer."""

    ok: list[str]
    refused: dict[str, str]
    no_answer: list[str]
