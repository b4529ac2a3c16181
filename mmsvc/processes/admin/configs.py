"""/v1/mm-configs: per-symbol configs in PostgreSQL, live in the running workers (D4)."""

from __future__ import annotations

import logging
from decimal import Decimal

from flask import Blueprint, Response, request
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from mmsvc.adapters.auth import Role
from mmsvc.adapters.db.configs import ConfigRepository
from mmsvc.adapters.db.models import MMConfig as ConfigRow
from mmsvc.adapters.db.orders import OrderRepository
from mmsvc.adapters.db.records import ConfigRecord, SymbolState
from mmsvc.adapters.db.states import StateRepository
from mmsvc.domain.state import Command
from mmsvc.domain.symbol_config import MMConfig, field_values
from mmsvc.processes.admin import config_spec, supervisor, validation
from mmsvc.processes.admin.auth import actor, requires
from mmsvc.processes.admin.bodies import Body, respond
from mmsvc.processes.admin.context import ctx
from mmsvc.processes.admin.errors import ApiError

log = logging.getLogger(__name__)
bp = Blueprint("configs", __name__)

# pg_advisory_xact_lock(int, int) keys live apart from the workers' one-key
# fencing locks (D17); this one serialises config creation for the MAX_SYMBOLS count.
_CREATE_LOCK = (0x6D6D, 1)


class ConfigList(Body):
    """GET /v1/mm-configs: every config, by symbol (a config's body is its record)."""

    configs: list[ConfigRecord]


def unknown_symbol(symbol: str) -> ApiError:
    """The 404 of a symbol without a config."""
    return ApiError(404, "UNKNOWN_SYMBOL", f"no config for {symbol}", field="symbol")


def load(session: Session, symbol: str) -> ConfigRecord:
    """The config of a well-formed symbol, or 404."""
    validation.check_symbol(symbol)
    config = ConfigRepository(session).get(symbol)
    if config is None:
        raise unknown_symbol(symbol)
    return config


@bp.get("/v1/mm-configs")
@requires(Role.READ)
def list_configs() -> Response:
    """Every config, by symbol."""
    with ctx().read() as session:
        configs = ConfigRepository(session).list()
    return respond(ConfigList(configs=configs))


@bp.get("/v1/mm-configs/<symbol>")
@requires(Role.READ)
def get_config(symbol: str) -> Response:
    """One config."""
    with ctx().read() as session:
        return respond(load(session, symbol))


@bp.post("/v1/mm-configs")
@requires(Role.ADMIN)
def create_config() -> Response:
    """Write the config, then have the supervisor spawn its PAUSED worker before answering (D4)."""
    body = validation.json_object(request.get_data())
    if "quote_interval_ms" not in body:
        # QUOTE_UPDATE_INTERVAL is a new config's default (D13); no float on the way.
        seconds = Decimal(repr(ctx().settings.quote_update_interval_s))
        body["quote_interval_ms"] = seconds * 1000
    config = config_spec.config_create(body)
    symbol = config.symbol
    with ctx().read() as session:
        _refuse_create(session, symbol)
    supervisor.require_reachable()
    created = _insert(config)
    log.info("config created", extra={"actor": actor(), "symbol": symbol})
    try:
        status, body = supervisor.ask(
            Command.CONFIG_CREATED, symbol=symbol, timeout_s=supervisor.SPAWN_TIMEOUT_S
        )
    except ApiError:
        _undo_create(symbol)
        raise
    if status == 409:
        _undo_create(symbol)
        raise supervisor.refusal(status, body)
    if status >= 300:
        # The worker may still be starting: keeping the row lets it find its config.
        raise ApiError(
            503,
            "WORKER_NOT_CONFIRMED",
            f"the config of {symbol} is saved but its worker did not confirm start-up: "
            f"{supervisor.reason_of(body)}",
        )
    response = respond(created, 201)
    response.headers["Location"] = f"/v1/mm-configs/{symbol}"
    return response


def _insert(config: MMConfig) -> ConfigRecord:
    with ctx().transaction() as session:
        session.execute(
            text("SELECT pg_advisory_xact_lock(:a, :b)"),
            {"a": _CREATE_LOCK[0], "b": _CREATE_LOCK[1]},
        )
        _refuse_create(session, config.symbol)
        return ConfigRepository(session).create(config.symbol, actor(), field_values(config))


def _refuse_create(session: Session, symbol: str) -> None:
    if ConfigRepository(session).get(symbol) is not None:
        raise ApiError(409, "CONFIG_EXISTS", f"{symbol} is already configured", field="symbol")
    count = session.scalar(select(func.count()).select_from(ConfigRow)) or 0
    limit = ctx().settings.max_symbols
    if count >= limit:
        raise ApiError(409, "MAX_SYMBOLS", f"MAX_SYMBOLS={limit} symbols are configured (D4)")


def _undo_create(symbol: str) -> None:
    with ctx().transaction() as session:
        ConfigRepository(session).delete(symbol, actor())
    log.warning("config creation undone", extra={"actor": actor(), "symbol": symbol})


@bp.put("/v1/mm-configs/<symbol>")
@requires(Role.ADMIN)
def update_config(symbol: str) -> Response:
    """Update the config; the running worker applies it without a restart, HALTED too (D4)."""
    validation.check_symbol(symbol)
    changes = config_spec.config_changes(validation.json_object(request.get_data()))
    supervisor.require_reachable()
    with ctx().transaction() as session:
        updated = ConfigRepository(session).update(symbol, actor(), changes)
    if updated is None:
        raise unknown_symbol(symbol)
    log.info(
        "config updated", extra={"actor": actor(), "symbol": symbol, "fields": sorted(changes)}
    )
    status, body = supervisor.ask(
        Command.CONFIG_CHANGED, symbol=symbol, args={"fields": sorted(changes)}
    )
    # 404: no worker runs the symbol, so none runs the old config; the next one reads this.
    if status >= 300 and status != 404:
        error = supervisor.refusal(status, body)
        error.message = f"the config is saved (retrying is safe), but: {error.message}"
        raise error
    return respond(updated)


@bp.delete("/v1/mm-configs/<symbol>")
@requires(Role.ADMIN)
def delete_config(symbol: str) -> Response:
    """Delete a config whose worker agreed to stop: refused while ACTIVE, HALTED or with orders."""
    with ctx().read() as session:
        load(session, symbol)
        _refuse_unless_idle(session, symbol)
    status, body = supervisor.ask(Command.CONFIG_DELETED, symbol=symbol)
    # 404: the supervisor runs no worker for it; the checks above are then the whole truth.
    if status >= 300 and status != 404:
        raise supervisor.refusal(status, body)
    with ctx().transaction() as session:
        _refuse_unless_idle(session, symbol, lock=True)
        ConfigRepository(session).delete(symbol, actor())
    ctx().status.remove(symbol)
    log.info("config deleted", extra={"actor": actor(), "symbol": symbol})
    return Response(status=204)


def _refuse_unless_idle(session: Session, symbol: str, *, lock: bool = False) -> None:
    states = StateRepository(session)
    state = states.lock(symbol) if lock else states.get(symbol)
    if state is not None and state.state in (SymbolState.ACTIVE, SymbolState.HALTED):
        raise ApiError(
            409,
            "NOT_IDLE",
            f"{symbol} is {state.state.value}: pause or reset it first",
            state=state.state.value,
        )
    if OrderRepository(session).unsettled(symbol):  # D31: awaiting final events too
        raise ApiError(
            409,
            "OPEN_ORDERS",
            f"{symbol} still has open orders or orders awaiting their final event",
            state=None if state is None else state.state.value,
        )
