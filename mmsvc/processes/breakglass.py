"""The break-glass kill: ``mmsvc-admin kill [--symbol S] --reason TEXT`` on the host (issue 14).

With the Auth Service down the HTTP kill fails closed, as it must; an operator
still needs a way to stop everything. This command needs only the service's
own environment (the unix user that runs it) and two dependencies: PostgreSQL,
which holds the kill flag and the states (D3), and the Order Service, which
holds the orders. It works with the supervisor, the admin API, Redis and the
Auth Service all down, through the same kill routine the supervisor and the
admin use (:mod:`mmsvc.processes.global_kill`): the flag (or one symbol's
HALTED) in PostgreSQL first, then every order of the account (or the symbol)
canceled until the venue lists none, retried until ``--deadline``. Workers
that are alive learn of the kill at their next lease or fence check (D30).

It exits 0 when the kill is recorded and the venue lists no open order, 1 when
anything is left undone (it says what), 2 on a bad setting or argument.
"""

from __future__ import annotations

import argparse
import getpass
import logging
import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.orm import Session

from mmsvc.adapters.db.engine import make_engine, make_session_factory
from mmsvc.adapters.db.records import RiskTrigger
from mmsvc.adapters.order_service.client import OrderServiceClient
from mmsvc.adapters.status.redis_store import StatusStore
from mmsvc.config import Settings, load_or_exit
from mmsvc.domain.symbol_config import SYMBOL_PATTERN
from mmsvc.processes.global_kill import Kill, KillOutcome, KillSwitch

log = logging.getLogger("mmsvc.breakglass")

DEFAULT_DEADLINE_S = 60.0


def parse(argv: list[str]) -> argparse.Namespace:
    """The command line: ``--reason`` is required, a kill without a reason is not audited."""
    parser = argparse.ArgumentParser(
        prog="mmsvc-admin kill",
        description="Halt every symbol (or one) and cancel the account's orders, needing only "
        "PostgreSQL and the Order Service (the break-glass of the HTTP kill).",
    )
    parser.add_argument("--symbol", help="one symbol; without it every symbol and the global flag")
    parser.add_argument("--reason", required=True, help="why, for the audit and the risk event")
    parser.add_argument(
        "--deadline",
        type=float,
        default=DEFAULT_DEADLINE_S,
        help="seconds to keep canceling until the venue lists none (default 60)",
    )
    args = parser.parse_args(argv)
    if args.symbol is not None and not _valid_symbol(args.symbol):
        parser.error(f"--symbol {args.symbol!r} is not a symbol ({SYMBOL_PATTERN})")
    if not args.reason.strip():
        parser.error("--reason must say why")
    return args


def _valid_symbol(symbol: str) -> bool:
    return re.fullmatch(SYMBOL_PATTERN, symbol) is not None


def kill(settings: Settings, symbol: str | None, reason: str, deadline_s: float) -> KillOutcome:
    """Record the kill and cancel until flat, with nothing but PostgreSQL and the Order Service."""
    engine = make_engine(
        settings.postgres_url,
        application_name="mmsvc-breakglass",
        pool_size=1,
        statement_timeout_s=settings.postgres_statement_timeout_s,
    )
    sessions = make_session_factory(engine)

    @contextmanager
    def transaction() -> Iterator[Session]:
        with sessions.begin() as session:
            yield session

    status = StatusStore(settings.redis_url, settings.redis_prefix)  # best effort (a cache: D25)
    orders = None if settings.shadow_mode else OrderServiceClient.from_settings(settings)
    actor = f"breakglass:{getpass.getuser()}"
    switch = KillSwitch(transaction, status, orders, settings.shadow_mode)
    try:
        outcome = switch.kill(Kill(RiskTrigger.MANUAL, f"break-glass: {reason}", actor, symbol))
        if outcome.orders_flat is False:  # keep going past the routine's own deadline (D7)
            outcome = KillOutcome(
                outcome.halted, switch.cancel(symbol, deadline_s), outcome.not_recorded
            )
        return outcome
    finally:
        if orders is not None:
            orders.close()
        engine.dispose()


def main(argv: list[str] | None = None) -> None:
    """``mmsvc-admin kill``: print what was done and exit 0 only when nothing is left undone."""
    args = parse(sys.argv[1:] if argv is None else argv)
    settings = load_or_exit(os.environ)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")
    outcome = kill(settings, args.symbol, args.reason, args.deadline)
    scope = args.symbol or "every symbol"
    print(f"break-glass kill of {scope}: HALTED recorded for {len(outcome.halted)} symbol(s)")
    if outcome.orders_flat is None:
        print("shadow mode: no Order Service call (D18)")
    elif outcome.orders_flat:
        print("the Order Service lists no open order of ours")
    else:
        print("ORDERS STILL OPEN at the Order Service: run it again, or cancel by hand")
    for item in outcome.not_recorded:
        print(f"NOT RECORDED: {item}")
    sys.exit(1 if outcome.orders_flat is False or outcome.undone else 0)
