"""The bodies of the emergency kill and of the reset (both optional)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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
