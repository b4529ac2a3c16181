"""Which supervisor a command goes to: this host's on ZeroMQ, or the owner's via PostgreSQL (D28).

A symbol's owner is the host of its live lease (D26). A command for a symbol
this host owns, or whose owner PostgreSQL cannot tell now, goes on the local
control socket: the fast path, which keeps working while PostgreSQL is down
(D25). A command for a symbol another host owns goes through the commands
table (`mmsvc.adapters.db.commands`) to that host's supervisor, which runs it
as its own admin's request, within the same timeout. A symbol that no live
lease names and that this host's supervisor does not run is between owners:
its steering commands answer 503 MOVING (the caller records a kill itself:
the next owner's worker reads it before its first quote, D30).

Commands for every symbol (reset, flatten) go to this host and to every host
that holds a live lease, and their answers are merged; a reset of a KAFKA_LAG
kill first asks every other member for its lag (D32).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from mmsvc.adapters.db import leases
from mmsvc.adapters.db.commands import Order, RemoteControl, RemoteUnanswered
from mmsvc.adapters.db.records import RiskTrigger
from mmsvc.adapters.db.states import KillFlagRepository
from mmsvc.adapters.zmq.control_client import Answer, SupervisorUnavailableError
from mmsvc.domain.lease import owner_host
from mmsvc.domain.state import Command
from mmsvc.processes.admin.context import ctx

log = logging.getLogger(__name__)

# Commands for one symbol that its owner's supervisor must run.
ROUTED = frozenset(
    {
        Command.ENABLE,
        Command.PAUSE,
        Command.RESUME,
        Command.RESET,
        Command.KILL,
        Command.STATUS,
        Command.CONFIG_CHANGED,
        Command.CONFIG_DELETED,
    }
)
# Of those, the ones a symbol between owners refuses with 503 MOVING (a config
# change or deletion keeps its 404: no worker runs the old config, the next reads the new).
STEERING = frozenset(
    {
        Command.ENABLE,
        Command.PAUSE,
        Command.RESUME,
        Command.RESET,
        Command.KILL,
        Command.STATUS,
    }
)
MOVING = "MOVING"
LAG_CHECK_TIMEOUT_S = 3.0


@dataclass(frozen=True, slots=True)
class Owner:
    """Who holds a symbol now: ``known`` False when PostgreSQL could not say."""

    known: bool
    host: str | None = None  # None: no live lease (between owners, or never started)


def request(
    cmd: Command,
    *,
    actor: str,
    symbol: str | None = None,
    args: Mapping[str, Any] | None = None,
    reason: str | None = None,
    timeout_s: float,
    find_owner: bool = True,
) -> Answer:
    """Send a command to the supervisor that runs `symbol`; SupervisorUnavailableError if none.

    503 MOVING when the symbol is between owners. ``find_owner`` False (PostgreSQL
    just failed to answer) asks this host's supervisor without looking (D25).
    """
    here = ctx().settings.host_id
    if symbol is None or cmd not in ROUTED or not find_owner:
        return _local(cmd, actor, symbol, args, reason, timeout_s)
    owner = owner_of(symbol)
    if owner.host not in (None, here):
        return _remote(owner.host, cmd, actor, symbol, args, reason, timeout_s)
    answer = _local(cmd, actor, symbol, args, reason, timeout_s)
    if not _no_worker(answer):
        return answer
    owner = owner_of(symbol)  # moved while we asked?
    if owner.host not in (None, here):
        return _remote(owner.host, cmd, actor, symbol, args, reason, timeout_s)
    if owner.known and owner.host is None and cmd in STEERING:
        return moving(symbol)
    return answer


def every_host(
    cmd: Command,
    *,
    actor: str,
    args: Mapping[str, Any] | None = None,
    timeout_s: float,
) -> Answer:
    """A command for every symbol, run by this host's and every owning host's supervisor.

    The bodies' ``ok``, ``refused`` and ``no_answer`` are merged; a host that
    did not answer lists its symbols under ``no_answer``. The status is 200
    when any host answered 200, else this host's. SupervisorUnavailableError
    when this host's supervisor cannot be reached, as before (D7).
    """
    here = ctx().settings.host_id
    others = _other_hosts(here)
    if cmd is Command.RESET:
        refusal = _lag_refusal(others, actor)
        if refusal is not None:
            return refusal
    remote = RemoteControl(ctx().sessions)
    orders = [Order(host, cmd.value, None, dict(args or {})) for host in sorted(others)]
    ids: dict[int, str] = {}
    if orders:
        try:
            ids = remote.submit(orders, actor=actor)
        except SQLAlchemyError:
            log.warning("commands not queued for the other hosts", exc_info=True)
    started = time.monotonic()
    local = _local(cmd, actor, None, args, None, timeout_s)
    left = max(0.0, timeout_s - (time.monotonic() - started))  # the hosts ran side by side
    got = remote.wait(set(ids), left) if ids else {}
    answers = [local]
    unanswered: list[str] = []
    for command_id, host in sorted(ids.items()):
        if command_id in got:
            answers.append(got[command_id])
        else:
            unanswered += others[host]
    for host in set(others) - set(ids.values()):
        unanswered += others[host]
    return merge(answers, unanswered)


def _lag_refusal(others: Mapping[str, list[str]], actor: str) -> Answer | None:
    """D32: a KAFKA_LAG kill is reset only once every member's lag is under the threshold.

    This host's supervisor checks its own as it resets; the others are asked
    here first, and one that does not answer counts as lagging (in doubt, halted).
    """
    try:
        with ctx().read() as session:
            flag = KillFlagRepository(session).get()
    except SQLAlchemyError:
        return None  # this host's supervisor reads the flag again as it resets
    if not others or not flag.active or flag.trigger is not RiskTrigger.KAFKA_LAG:
        return None
    threshold = ctx().settings.kill_switch_kafka_lag_threshold_s
    orders = [Order(host, Command.PING.value) for host in sorted(others)]
    try:
        pings = RemoteControl(ctx().sessions).request_many(
            orders, actor=actor, timeout_s=LAG_CHECK_TIMEOUT_S
        )
    except SQLAlchemyError:
        pings = {}
    for host in sorted(others):
        answer = pings.get(host)
        lag = None if answer is None else answer[1].get("kafka_lag_now_s")
        if not isinstance(lag, int | float):
            message = f"host {host} did not answer the consumer lag check"
        elif lag > threshold:
            message = f"consumer lag {lag:.1f}s on host {host} is still over the threshold"
        else:
            continue
        return 409, {"error": {"code": "KAFKA_LAG", "message": message}}
    return None


def merge(answers: list[Answer], unanswered: list[str]) -> Answer:
    """One answer of several supervisors' summaries (the first one's status and extras)."""
    status, first = answers[0]
    body: dict[str, Any] = dict(first)
    ok: set[str] = set()
    refused: dict[str, Any] = {}
    no_answer: set[str] = set(unanswered)
    for _, each in answers:
        ok.update(_strings(each.get("ok")))
        no_answer.update(_strings(each.get("no_answer")))
        if isinstance(each.get("refused"), Mapping):
            refused.update(each["refused"])
    if any(s == 200 for s, _ in answers):
        status = 200
        body.pop("error", None)
    body.update(ok=sorted(ok), refused=refused, no_answer=sorted(no_answer - ok))
    return status, body


def owner_of(symbol: str) -> Owner:
    """The host of the symbol's live lease now; unknown while PostgreSQL does not answer."""
    try:
        with ctx().read() as session:
            holder = leases.holder(session, symbol)
    except SQLAlchemyError:
        log.warning("lease unreadable: asking this host's supervisor", extra={"symbol": symbol})
        return Owner(known=False)
    if holder is None or not holder.live:
        return Owner(known=True)
    return Owner(known=True, host=owner_host(holder.owner))


def moving(symbol: str) -> Answer:
    """The answer for a symbol between owners: 503, retry shortly."""
    message = f"{symbol} is moving between hosts (no live owner): retry in a few seconds"
    return 503, {"error": {"code": MOVING, "message": message}}


def _other_hosts(here: str) -> dict[str, list[str]]:
    """host -> its symbols, for every other host holding a live lease."""
    try:
        with ctx().read() as session:
            held = leases.holders(session)
    except SQLAlchemyError:
        log.warning("leases unreadable: the command goes to this host only")
        return {}
    hosts: dict[str, list[str]] = {}
    for symbol, holder in sorted(held.items()):
        host = owner_host(holder.owner)
        if holder.live and host != here:
            hosts.setdefault(host, []).append(symbol)
    return hosts


def _local(
    cmd: Command,
    actor: str,
    symbol: str | None,
    args: Mapping[str, Any] | None,
    reason: str | None,
    timeout_s: float,
) -> Answer:
    return ctx().control.request(
        cmd, actor=actor, symbol=symbol, args=args, reason=reason, timeout_s=timeout_s
    )


def _remote(
    host: str,
    cmd: Command,
    actor: str,
    symbol: str,
    args: Mapping[str, Any] | None,
    reason: str | None,
    timeout_s: float,
) -> Answer:
    log.info("command for another host", extra={"cmd": cmd, "symbol": symbol, "host": host})
    order = Order(host, cmd.value, symbol, dict(args or {}), reason)
    try:
        answer = RemoteControl(ctx().sessions).request(order, actor=actor, timeout_s=timeout_s)
    except (RemoteUnanswered, SQLAlchemyError) as exc:
        raise SupervisorUnavailableError(f"host {host} (owner of {symbol}): {exc}") from None
    if _no_worker(answer) and cmd in STEERING:  # its worker stopped since: it is moving
        return moving(symbol)
    return answer


def _no_worker(answer: Answer) -> bool:
    """The local supervisor runs no worker for the symbol (its 404 UNKNOWN_SYMBOL)."""
    status, body = answer
    error = body.get("error")
    return status == 404 and isinstance(error, Mapping) and error.get("code") == "UNKNOWN_SYMBOL"


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []
