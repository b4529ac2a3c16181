"""Symbol control and emergency controls, carried to the workers by the supervisor."""

from __future__ import annotations

import logging
from typing import Any, Literal

from flask import Blueprint, Response, request
from sqlalchemy.exc import SQLAlchemyError

from mmsvc.adapters.auth import Role
from mmsvc.adapters.db.records import RiskTrigger, SymbolState
from mmsvc.adapters.db.states import KillFlagRepository, StateRepository
from mmsvc.adapters.zmq.control_client import SupervisorUnavailableError
from mmsvc.domain.state import Command
from mmsvc.processes.admin import control_bodies, emergency, routing, supervisor, validation
from mmsvc.processes.admin.auth import actor, requires
from mmsvc.processes.admin.bodies import respond
from mmsvc.processes.admin.configs import load
from mmsvc.processes.admin.context import ctx
from mmsvc.processes.admin.control_bodies import CommandSummary, KillResult, ResetResult
from mmsvc.processes.admin.errors import ApiError
from mmsvc.processes.admin.status_bodies import SymbolState as SymbolStateBody
from mmsvc.processes.admin.views import state_view

log = logging.getLogger(__name__)
bp = Blueprint("control", __name__)

# A kill that waits on a hung supervisor is a kill delayed: past this, the admin
# process does it itself (D7); the supervisor finishing later records nothing twice.
KILL_TIMEOUT_S = 3.0


def _state_of(symbol: str) -> SymbolStateBody:
    with ctx().read() as session:
        config = load(session, symbol)
        state = StateRepository(session).get(symbol)
    if state is None:
        raise ApiError(502, "NO_STATE", f"{symbol} has no state row after the command")
    return state_view(config.enabled, state)


def _transition(symbol: str, command: Command) -> Response:
    with ctx().read() as session:
        load(session, symbol)
        flag = KillFlagRepository(session).get()
        current = StateRepository(session).get(symbol)
    if command != Command.PAUSE and flag.active:
        raise ApiError(
            409,
            "GLOBAL_KILL_ACTIVE",
            "the global kill switch is set: POST /v1/mm/reset first (D3)",
            state=None if current is None else current.state.value,
        )
    status, body = supervisor.ask(command, symbol=symbol, args={"reason": command})
    if status >= 300:
        raise supervisor.refusal(status, body)
    log.info("symbol %s", command, extra={"actor": actor(), "symbol": symbol})
    return respond(_state_of(symbol))


@bp.post("/v1/mm-configs/<symbol>/enable")
@requires(Role.OPERATE)
def enable(symbol: str) -> Response:
    """enabled=true and PAUSED -> ACTIVE; 409 with the state otherwise."""
    return _transition(symbol, Command.ENABLE)


@bp.post("/v1/mm-configs/<symbol>/pause")
@requires(Role.OPERATE)
def pause(symbol: str) -> Response:
    """ACTIVE -> PAUSED, its orders canceled; 409 with the state otherwise."""
    return _transition(symbol, Command.PAUSE)


@bp.post("/v1/mm-configs/<symbol>/resume")
@requires(Role.OPERATE)
def resume(symbol: str) -> Response:
    """PAUSED -> ACTIVE when enabled; 409 with the state otherwise."""
    return _transition(symbol, Command.RESUME)


@bp.post("/v1/mm/emergency/kill")
@requires(Role.ADMIN)
def kill() -> Response:
    """Kill every symbol, or the one named; works with the supervisor down (D7)."""
    wanted = control_bodies.kill_request(validation.json_object(request.get_data(), optional=True))
    database_up = wanted.symbol is None or _known(wanted.symbol)
    detail = wanted.reason or f"manual emergency kill by {actor()}"
    log.critical("emergency kill", extra={"actor": actor(), "symbol": wanted.symbol})
    no_answer: list[str] = []
    try:
        # One symbol goes to its owner, any host's (D28); between owners it answers
        # MOVING and the kill is recorded below, for the next owner to apply (D30).
        # Every symbol: this host raises the flag, the others act on its NOTIFY.
        _, body = routing.request(
            Command.KILL,
            actor=actor(),
            symbol=wanted.symbol,
            reason=detail,
            args={"trigger": RiskTrigger.MANUAL.value, "detail": detail},
            timeout_s=KILL_TIMEOUT_S,
            find_owner=database_up,  # PostgreSQL away: straight to this host's (D25)
        )
        no_answer = supervisor.symbols(body.get("no_answer"))
        handled = _killed(wanted.symbol)
    except SupervisorUnavailableError:
        log.error("supervisor unavailable: the admin process kills (D7)")
        handled = False
    flat: bool | None = None
    if not handled:
        outcome = emergency.kill(ctx(), wanted.symbol, detail, actor())
        flat = outcome.orders_flat
        if outcome.undone:  # Redis is a cache: a missed copy alone still answers 200 (D25)
            raise ApiError(
                503,
                "KILL_NOT_RECORDED",
                f"cancels sent (orders flat: {flat}) but not recorded: "
                + ", ".join(outcome.not_recorded),
            )
    return respond(_kill_result(wanted.symbol, handled, no_answer, flat))


def _known(symbol: str) -> bool:
    """404 for a symbol with no config; a database that cannot say must not delay the kill
    (False: it did not answer)."""
    try:
        with ctx().read() as session:
            load(session, symbol)
    except SQLAlchemyError:
        log.exception("cannot check the symbol: killing it anyway")
        return False
    return True


def _killed(symbol: str | None) -> bool:
    """True when PostgreSQL shows the kill done: the flag set, or the symbol HALTED."""
    try:
        with ctx().read() as session:
            if symbol is None:
                return KillFlagRepository(session).get().active
            state = StateRepository(session).get(symbol)
    except SQLAlchemyError:
        log.exception("cannot confirm the supervisor's kill: the admin process kills too")
        return False
    return state is not None and state.state is SymbolState.HALTED


def _kill_result(
    symbol: str | None, by_supervisor: bool, no_answer: list[str], flat: bool | None
) -> KillResult:
    with ctx().read() as session:
        flag = KillFlagRepository(session).get()
        halted = sorted(
            s.symbol
            for s in StateRepository(session).list()
            if s.state is SymbolState.HALTED and symbol in (None, s.symbol)
        )
    handled_by: Literal["supervisor", "admin"] = "supervisor" if by_supervisor else "admin"
    return KillResult(
        scope="ALL" if symbol is None else "SYMBOL",
        symbol=symbol,
        handled_by=handled_by,
        kill_switch_active=flag.active,
        halted=halted,
        no_answer=no_answer,
        orders_flat=flat,
    )


@bp.post("/v1/mm/emergency/flatten")
@requires(Role.ADMIN)
def flatten() -> Response:
    """Cancel every order on every symbol and pause every ACTIVE one."""
    log.warning("flatten", extra={"actor": actor()})
    status, body = supervisor.ask_every_host(Command.FLATTEN)
    if status >= 300:
        raise supervisor.refusal(status, body)
    return respond(
        CommandSummary(
            ok=supervisor.symbols(body.get("ok")),
            refused=supervisor.reasons(body.get("refused")),
            no_answer=supervisor.symbols(body.get("no_answer")),
        )
    )


@bp.post("/v1/mm/reset")
@requires(Role.ADMIN)
def reset() -> Response:
    """HALTED -> PAUSED where each trigger's condition is gone (D9); 409 when none was reset."""
    symbol = control_bodies.reset_request(validation.json_object(request.get_data(), optional=True))
    with ctx().read() as session:
        if symbol is not None:
            load(session, symbol)
        flag_before = KillFlagRepository(session).get().active
    if symbol is None:  # every host resets the symbols it holds (D28)
        status, body = supervisor.ask_every_host(Command.RESET)
    else:
        status, body = supervisor.ask(Command.RESET, symbol=symbol)
    if status not in (200, 409):
        raise supervisor.refusal(status, body)
    with ctx().read() as session:
        cleared = flag_before and not KillFlagRepository(session).get().active
    result = _reset_result(symbol, status, body, cleared)
    log.warning("reset", extra={"actor": actor(), "symbol": symbol, "reset": result.reset})
    return respond(result, 200 if result.reset or cleared else 409)


def _reset_result(
    symbol: str | None, status: int, body: dict[str, Any], cleared: bool
) -> ResetResult:
    if symbol is not None:
        ok = status == 200
        refused = {} if ok else {symbol: supervisor.reason_of(body)}
        done = [symbol] if ok else []
    else:
        done = supervisor.symbols(body.get("ok"))
        refused = supervisor.reasons(body.get("refused"))
    reason = None
    if not done and not cleared:
        reason = (
            supervisor.reason_of(body)
            if "error" in body
            else "nothing was reset: no symbol is HALTED and the global kill switch is not set"
        )
    return ResetResult(
        reset=done,
        refused=refused,
        no_answer=supervisor.symbols(body.get("no_answer")),
        global_flag_cleared=cleared,
        reason=reason,
    )
