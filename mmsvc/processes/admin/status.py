"""Status: PostgreSQL's records and the workers' live status in Redis, no supervisor trip."""

from __future__ import annotations

import time

from flask import Blueprint, Response

from mmsvc.adapters.auth import Role
from mmsvc.adapters.db import leases
from mmsvc.adapters.db.configs import ConfigRepository
from mmsvc.adapters.db.orders import OrderRepository
from mmsvc.adapters.db.positions import PositionRepository
from mmsvc.adapters.db.states import KillFlagRepository, StateRepository
from mmsvc.processes.admin.auth import requires
from mmsvc.processes.admin.bodies import respond
from mmsvc.processes.admin.configs import load
from mmsvc.processes.admin.context import ctx
from mmsvc.processes.admin.status_bodies import OverallStatus, SymbolStatus
from mmsvc.processes.admin.views import (
    kill_switch_view,
    live_view,
    order_view,
    position_view,
    state_view,
    summary_view,
    totals_view,
)

bp = Blueprint("status", __name__)


@bp.get("/v1/mm/status")
@requires(Role.READ)
def overall() -> Response:
    """Every symbol, the totals and the kill switch (PostgreSQL's flag with Redis's copy).

    Redis is a cache (D25): when it cannot answer, PostgreSQL's records stand
    alone and whatever only Redis knows reads ``null``, never ``false``.
    """
    store = ctx().status
    with ctx().read() as session:
        configs = ConfigRepository(session).list()
        states = {s.symbol: s for s in StateRepository(session).list()}
        flag = KillFlagRepository(session).get()
        owners = leases.holders(session)  # D28: which host runs each symbol, under which epoch
    live, now = store.read_all(), time.time()
    known = live is not None  # Redis answered; when it did not, skip its other reads too
    summaries = [
        summary_view(
            c,
            states.get(c.symbol),
            (live or {}).get(c.symbol),
            now,
            owners.get(c.symbol),
            known=known,
        )
        for c in configs
    ]
    beat = (store.heartbeats() or {}).get("supervisor") if known else None
    return respond(
        OverallStatus(
            kill_switch=kill_switch_view(flag, store.kill_flag(), known=known),
            shadow_mode=ctx().settings.shadow_mode,
            auth_disabled=ctx().settings.disable_auth,
            symbols=summaries,
            totals=totals_view(summaries),
            supervisor_heartbeat_age_s=None if beat is None else round(max(0.0, now - beat), 3),
        )
    )


@bp.get("/v1/mm-configs/<symbol>/status")
@requires(Role.READ)
def one(symbol: str) -> Response:
    """Config, state, stored position, open orders and the live status of one symbol."""
    with ctx().read() as session:
        config = load(session, symbol)
        state = StateRepository(session).get(symbol)
        position = PositionRepository(session).get(symbol)
        orders = OrderRepository(session).list_open(symbol)
        flag = KillFlagRepository(session).get()
    live = ctx().status.read(symbol)
    return respond(
        SymbolStatus(
            symbol=symbol,
            config=config,
            state=None if state is None else state_view(config.enabled, state),
            position=None if position is None else position_view(position),
            open_orders=[order_view(o) for o in orders],
            live=None if live is None else live_view(live),
            kill_switch_active=flag.active,
        )
    )
