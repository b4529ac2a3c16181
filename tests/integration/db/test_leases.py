"""The ownership lease on real PostgreSQL: take, renew, release, fence (D26, D28, D30, D32).

Each test commits through its own sessions (a lease is only worth something
across connections) on a symbol of its own, and deletes what it wrote.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import Engine, delete, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from mmsvc.adapters.db import leases
from mmsvc.adapters.db.dead_letters import DeadLetterRepository
from mmsvc.adapters.db.engine import database_down, make_session_factory, make_worker_engine
from mmsvc.adapters.db.leases import Fenced, LeaseHeld
from mmsvc.adapters.db.models import MMDeadLetter, MMLease, MMOrder
from mmsvc.adapters.db.orders import OrderRepository
from mmsvc.adapters.db.records import RiskTrigger, SymbolState
from mmsvc.adapters.db.states import KillFlagRepository, StateRepository
from mmsvc.adapters.db.transitions import halt
from tests.fixtures.waiting import wait_for
from tests.integration.db.conftest import new_order

pytestmark = pytest.mark.integration

LEASE_S = 30.0
_numbers = itertools.count(1)


@pytest.fixture
def symbol(db_engine: Engine) -> Iterator[str]:
    """A symbol no other test touches; its lease and orders are deleted afterwards."""
    name = f"LEASE{next(_numbers)}USDT"
    yield name
    with Session(db_engine) as session, session.begin():
        session.execute(delete(MMOrder).where(MMOrder.symbol == name))
        session.execute(delete(MMLease).where(MMLease.symbol == name))


def take(
    engine: Engine, symbol: str, owner: str, lease_s: float = LEASE_S, **kw: float
) -> leases.Lease:
    with Session(engine) as session, session.begin():
        return leases.take(session, symbol, owner, lease_s, **kw)


def renew(engine: Engine, symbol: str, epoch: int, lease_s: float = LEASE_S) -> leases.Renewal:
    with Session(engine) as session, session.begin():
        return leases.renew(session, symbol, epoch, lease_s)


def release(engine: Engine, symbol: str, epoch: int) -> bool:
    with Session(engine) as session, session.begin():
        return leases.release(session, symbol, epoch)


def age_lease(engine: Engine, symbol: str, seconds: float) -> None:
    """Move the lease's end `seconds` into the past, as if that much time had gone by."""
    with Session(engine) as session, session.begin():
        session.execute(
            text(
                "UPDATE mm_leases SET"
                " lease_expires_at = least(lease_expires_at, now()) - make_interval(secs => :s),"
                " released_at = released_at - make_interval(secs => :s) WHERE symbol = :symbol"
            ),
            {"s": seconds, "symbol": symbol},
        )


def write_order_fenced(engine: Engine, symbol: str, epoch: int) -> None:
    """A worker's write transaction: the fence first, then the PENDING order (D26)."""
    with Session(engine) as session, session.begin():
        leases.fence(session, symbol, epoch)
        OrderRepository(session).insert_pending(new_order(symbol))


def orders_of(engine: Engine, symbol: str) -> int:
    with Session(engine) as session:
        return len(OrderRepository(session).list_open(symbol))


def test_take_renew_release_and_take_again_with_the_next_epoch(db_engine, symbol):
    first = take(db_engine, symbol, "host-a/100", lease_s=5.0)
    assert (first.epoch, first.takeover) == (1, False)
    renewal = renew(db_engine, symbol, first.epoch, lease_s=20.0)
    assert renewal.epoch == 1
    assert renewal.expires_at > first.expires_at
    assert release(db_engine, symbol, first.epoch)
    assert not release(db_engine, symbol, first.epoch), "a lease is released once"
    again = take(db_engine, symbol, "host-a/101")
    # Released a moment ago: the next owner carries on (D28, D29).
    assert (again.epoch, again.takeover) == (2, True)


def test_a_second_owner_is_refused_while_the_lease_holds(db_engine, symbol):
    take(db_engine, symbol, "host-a/100")
    with pytest.raises(LeaseHeld, match=r"held by host-a/100 \(epoch 1\)"):
        take(db_engine, symbol, "host-b/200")
    write_order_fenced(db_engine, symbol, 1)
    assert orders_of(db_engine, symbol) == 1


def test_an_expired_lease_is_taken_over_with_the_next_epoch_on_postgres_clock(db_engine, symbol):
    take(db_engine, symbol, "host-a/100", lease_s=0.3)
    # Real time on PostgreSQL's clock: polled, never slept.
    taken = wait_for(
        lambda: _try_take(db_engine, symbol, "host-b/200"), timeout=10, what="lease expiry"
    )
    assert (taken.owner, taken.epoch, taken.takeover) == ("host-b/200", 2, True)


def _try_take(engine: Engine, symbol: str, owner: str) -> leases.Lease | None:
    try:
        return take(engine, symbol, owner)
    except LeaseHeld:
        return None


def test_after_a_takeover_the_old_owner_can_neither_renew_nor_write(db_engine, symbol):
    old = take(db_engine, symbol, "host-a/100")
    age_lease(db_engine, symbol, 1.0)
    new = take(db_engine, symbol, "host-b/200")
    assert new.epoch == old.epoch + 1
    with pytest.raises(Fenced, match=r"taken over by host-b/200 \(epoch 2 > 1\)"):
        renew(db_engine, symbol, old.epoch)
    with pytest.raises(Fenced, match="epoch 2 > 1"):
        write_order_fenced(db_engine, symbol, old.epoch)
    assert orders_of(db_engine, symbol) == 0, "the fenced write rolled back entirely"
    assert not release(db_engine, symbol, old.epoch), "an old epoch cannot release the new lease"
    write_order_fenced(db_engine, symbol, new.epoch)
    assert orders_of(db_engine, symbol) == 1


def test_an_expired_lease_is_neither_renewed_nor_written_through(db_engine, symbol):
    lease = take(db_engine, symbol, "host-a/100")
    age_lease(db_engine, symbol, 0.5)
    with pytest.raises(Fenced, match=r"epoch 1 expired \d+\.\d+s ago"):
        renew(db_engine, symbol, lease.epoch)
    with pytest.raises(Fenced, match="expired"):
        write_order_fenced(db_engine, symbol, lease.epoch)
    assert orders_of(db_engine, symbol) == 0


def test_a_released_lease_fences_its_owner(db_engine, symbol):
    lease = take(db_engine, symbol, "host-a/100")
    assert release(db_engine, symbol, lease.epoch)
    with pytest.raises(Fenced, match="released"):
        write_order_fenced(db_engine, symbol, lease.epoch)


def test_no_lease_no_write(db_engine, symbol):
    with pytest.raises(Fenced, match="no lease"):
        write_order_fenced(db_engine, symbol, 1)


def test_renewal_returns_a_kill_written_straight_to_postgres_and_the_state(
    db_engine, committed_symbol
):
    lease = take(db_engine, committed_symbol, "host-a/100")
    try:
        quiet = renew(db_engine, committed_symbol, lease.epoch)
        assert not quiet.kill.active
        assert quiet.state is not None
        assert quiet.state.state is SymbolState.PAUSED
        # The break-glass path (D30): straight to PostgreSQL, no worker involved.
        with Session(db_engine) as session, session.begin():
            KillFlagRepository(session).set(RiskTrigger.MANUAL, reason="drill", actor="ops")
            halt(
                session,
                committed_symbol,
                RiskTrigger.MANUAL,
                detail="drill",
                actor="ops",
                shadow=False,
                position_usdt=Decimal(0),
                pnl_usdt=Decimal(0),
            )
        told = renew(db_engine, committed_symbol, lease.epoch)
        assert told.kill.active
        assert told.kill.trigger is RiskTrigger.MANUAL
        assert told.state is not None
        assert told.state.state is SymbolState.HALTED
        assert told.state.trigger is RiskTrigger.MANUAL
        assert told.state.trigger_detail == "drill"
    finally:
        with Session(db_engine) as session, session.begin():
            KillFlagRepository(session).clear(reason="drill over", actor="ops")
            session.execute(delete(MMLease).where(MMLease.symbol == committed_symbol))


def test_renewal_returns_the_symbols_dead_letter_hold_and_its_pending_replays(db_engine, symbol):
    """D31's hold rides on the renewal (issue 13): no query of its own every second."""
    lease = take(db_engine, symbol, "host-a/100")
    try:
        quiet = renew(db_engine, symbol, lease.epoch)
        assert (quiet.dead_letters, quiet.replays_pending) == (0, False)
        with Session(db_engine) as session, session.begin():
            row_id = DeadLetterRepository(session).add(
                symbol=symbol,
                topic="engine.event.v1",
                partition=0,
                offset=1,
                key=symbol,
                value=b"bad",
                reason="apply_error",
                detail="test",
            )
        assert row_id is not None
        held = renew(db_engine, symbol, lease.epoch)
        assert (held.dead_letters, held.replays_pending) == (1, False)
        with Session(db_engine) as session, session.begin():
            DeadLetterRepository(session).clear(row_id, how="replay", actor="ops", reason="fixed")
        cleared = renew(db_engine, symbol, lease.epoch)
        assert (cleared.dead_letters, cleared.replays_pending) == (0, True)
        with Session(db_engine) as session, session.begin():
            DeadLetterRepository(session).mark_replayed(row_id)
        replayed = renew(db_engine, symbol, lease.epoch)
        assert (replayed.dead_letters, replayed.replays_pending) == (0, False)
    finally:
        with Session(db_engine) as session, session.begin():
            session.execute(delete(MMDeadLetter).where(MMDeadLetter.symbol == symbol))


def test_the_keepers_renewal_is_committed_on_its_own(db_engine, symbol):
    """One statement in autocommit (issue 13): the extension is there for everyone to see."""
    worker = keeper(db_engine, symbol, "host-a/100", FakeClock())
    worker.take()
    before = lease_end(db_engine, symbol)
    renewal = worker.renew()
    assert renewal.expires_at > before
    assert lease_end(db_engine, symbol) == renewal.expires_at
    with worker.transaction() as session:  # the connection is back to transactions
        OrderRepository(session).insert_pending(new_order(symbol))
        session.rollback()
    assert orders_of(db_engine, symbol) == 0


def test_a_renewal_and_a_write_survive_a_pooled_connection_that_died(
    db_engine, database_url, symbol
):
    """The renewal is its own ping (no pre-ping round trip); every other checkout is pinged."""
    name = f"lease-ping-{symbol}"
    engine = make_worker_engine(database_url, application_name=name)
    try:
        worker = leases.LeaseKeeper(make_session_factory(engine), symbol, "host-a/100")
        worker.take()
        terminate(db_engine, name)  # as a PgBouncer or PostgreSQL restart would
        worker.renew()
        terminate(db_engine, name)
        with worker.transaction() as session:
            OrderRepository(session).insert_pending(new_order(symbol))
        assert orders_of(db_engine, symbol) == 1
    finally:
        engine.dispose()


def terminate(engine: Engine, application_name: str) -> None:
    """End the server side of every connection of `application_name`, as a restart would."""
    with engine.connect() as connection:
        ended = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                " WHERE application_name = :name"
            ),
            {"name": application_name},
        ).scalar_one()
    assert ended == 1


def lease_end(engine: Engine, symbol: str) -> datetime:
    with Session(engine) as session:
        lease = session.get(MMLease, symbol, populate_existing=True)
        assert lease is not None
        return lease.lease_expires_at


def test_a_fenced_out_owner_may_still_write_halted_without_the_fence(db_engine, committed_symbol):
    old = take(db_engine, committed_symbol, "host-a/100")
    try:
        age_lease(db_engine, committed_symbol, 1.0)
        take(db_engine, committed_symbol, "host-b/200")
        with Session(db_engine) as session, session.begin():
            with pytest.raises(Fenced), session.begin_nested():
                leases.fence(session, committed_symbol, old.epoch)
            # D30: a kill is never refused by the fence, so a kill skips it.
            halt(
                session,
                committed_symbol,
                RiskTrigger.EXPOSURE,
                detail="limit",
                actor="worker",
                shadow=False,
                position_usdt=Decimal(0),
                pnl_usdt=Decimal(0),
            )
        with Session(db_engine) as session:
            state = StateRepository(session).get(committed_symbol)
        assert state is not None
        assert state.state is SymbolState.HALTED
    finally:
        with Session(db_engine) as session, session.begin():
            session.execute(delete(MMLease).where(MMLease.symbol == committed_symbol))


@pytest.mark.parametrize(
    ("ended_s_ago", "takeover"),
    [(5.0, True), (29.0, True), (31.0, False), (3600.0, False)],
)
def test_takeover_or_cold_start_by_how_long_ago_the_lease_ended(
    db_engine, symbol, ended_s_ago, takeover
):
    take(db_engine, symbol, "host-a/100")
    age_lease(db_engine, symbol, ended_s_ago)
    taken = take(db_engine, symbol, "host-b/200", takeover_window_s=leases.TAKEOVER_WINDOW_S)
    assert taken.takeover is takeover


def test_a_released_lease_long_ago_is_a_cold_start(db_engine, symbol):
    lease = take(db_engine, symbol, "host-a/100")
    release(db_engine, symbol, lease.epoch)
    age_lease(db_engine, symbol, 60.0)
    assert take(db_engine, symbol, "host-b/200").takeover is False


@pytest.mark.parametrize("expired_first", [False, True], ids=["new-symbol", "expired-lease"])
def test_of_owners_taking_at_once_exactly_one_wins(db_engine, symbol, expired_first):
    if expired_first:
        take(db_engine, symbol, "host-z/1")
        age_lease(db_engine, symbol, 1.0)
    contenders = 8
    start = threading.Barrier(contenders)
    won: list[leases.Lease] = []
    refused: list[str] = []

    def contend(owner: str) -> None:
        start.wait(10)
        try:
            won.append(take(db_engine, symbol, owner))
        except LeaseHeld as held:
            refused.append(str(held))

    threads = [threading.Thread(target=contend, args=(f"host-{n}/1",)) for n in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(won) == 1, (won, refused)
    assert len(refused) == contenders - 1, (won, refused)
    assert won[0].epoch == (2 if expired_first else 1)
    assert all(f"held by {won[0].owner}" in message for message in refused)


def test_a_write_in_flight_holds_off_a_takeover_until_it_commits(db_engine, symbol):
    lease = take(db_engine, symbol, "host-a/100")
    taken: list[leases.Lease] = []
    with Session(db_engine) as writer, writer.begin():
        leases.fence(writer, symbol, lease.epoch)
        # Another owner expires the lease and takes it while the write is in
        # flight: it waits for the row lock, so the two never overlap.
        taker = threading.Thread(target=lambda: taken.append(_take_after_expiry(db_engine, symbol)))
        taker.start()
        taker.join(0.5)
        assert taker.is_alive(), "a takeover must wait for the write's row lock"
        OrderRepository(writer).insert_pending(new_order(symbol))
    taker.join(30)
    assert taken
    assert taken[0].epoch == 2
    assert orders_of(db_engine, symbol) == 1


def _take_after_expiry(engine: Engine, symbol: str) -> leases.Lease:
    with Session(engine) as session, session.begin():
        session.execute(text("SET LOCAL lock_timeout = '20s'"))
        session.execute(
            text(
                "UPDATE mm_leases SET lease_expires_at = now() - interval '1 second'"
                " WHERE symbol = :symbol"
            ),
            {"symbol": symbol},
        )
        return leases.take(session, symbol, "host-b/200", LEASE_S)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def keeper(engine: Engine, symbol: str, owner: str, clock: FakeClock) -> leases.LeaseKeeper:
    return leases.LeaseKeeper(
        make_session_factory(engine), symbol, owner, lease_s=5.0, margin_s=1.0, clock=clock
    )


def test_the_keeper_places_until_its_local_deadline_and_renews_when_due(db_engine, symbol):
    clock = FakeClock()
    worker = keeper(db_engine, symbol, "host-a/100", clock)
    assert not worker.may_place(), "no place before the lease is taken"
    worker.take()
    assert worker.may_place()
    assert not worker.renewal_due()
    clock.now += 1.0
    assert worker.renewal_due()
    clock.now += 3.5  # 4.5 s after the take: past lease - margin with no renewal
    assert not worker.may_place()
    worker.renew()
    assert worker.may_place()
    with worker.transaction() as session:
        OrderRepository(session).insert_pending(new_order(symbol))
    assert orders_of(db_engine, symbol) == 1
    assert worker.release()
    assert not worker.may_place()


def test_a_keeper_fenced_out_by_a_takeover_stops_placing_and_writing(db_engine, symbol):
    clock = FakeClock()
    old = keeper(db_engine, symbol, "host-a/100", clock)
    old.take()
    age_lease(db_engine, symbol, 1.0)
    keeper(db_engine, symbol, "host-b/200", FakeClock()).take()
    # Its local clock still says the lease holds: only PostgreSQL knows better.
    assert old.may_place()
    with pytest.raises(Fenced, match="taken over"), old.transaction() as session:
        OrderRepository(session).insert_pending(new_order(symbol))
    assert not old.may_place()
    assert old.epoch is None
    with pytest.raises(Fenced, match="no lease held"):
        old.renew()
    assert orders_of(db_engine, symbol) == 0


def test_a_renewal_that_waited_behind_a_write_judges_expiry_after_the_wait(db_engine, symbol):
    lease = take(db_engine, symbol, "host-a/100", lease_s=1.0)
    outcome: list[object] = []

    def renew_behind_the_writer() -> None:
        try:
            outcome.append(renew(db_engine, symbol, lease.epoch, lease_s=30.0))
        except Fenced as fenced:
            outcome.append(fenced)

    with Session(db_engine) as writer, writer.begin():
        leases.fence(writer, symbol, lease.epoch)
        renewer = threading.Thread(target=renew_behind_the_writer)
        renewer.start()
        # The lease runs out on PostgreSQL's clock while the renewal waits for the row.
        wait_for(lambda: _expired_on_server(db_engine, symbol), 10, "the lease's expiry")
        assert renewer.is_alive(), "the renewal must wait for the writer's row lock"
    renewer.join(30)
    assert len(outcome) == 1, outcome
    assert isinstance(outcome[0], Fenced), outcome
    assert "expired" in str(outcome[0])


def _expired_on_server(engine: Engine, symbol: str) -> bool:
    with Session(engine) as session:
        return bool(
            session.execute(
                text(
                    "SELECT lease_expires_at < clock_timestamp() FROM mm_leases WHERE symbol = :s"
                ),
                {"s": symbol},
            ).scalar_one()
        )


def resume(engine: Engine, symbol: str, owner: str, epoch: int) -> leases.Renewal:
    with Session(engine) as session, session.begin():
        return leases.resume(session, symbol, owner, epoch, LEASE_S)


def test_after_an_outage_an_expired_lease_nobody_took_is_resumed_under_the_same_epoch(
    db_engine: Engine, symbol: str
) -> None:
    first = take(db_engine, symbol, "host/1")
    age_lease(db_engine, symbol, 10)  # PostgreSQL's clock ran on while nobody reached it
    with pytest.raises(Fenced):
        renew(db_engine, symbol, first.epoch)
    renewal = resume(db_engine, symbol, "host/1", first.epoch)
    assert renewal.epoch == first.epoch
    renew(db_engine, symbol, first.epoch)  # live again: a plain renewal works


def test_after_an_outage_a_lease_another_owner_took_is_not_resumed(
    db_engine: Engine, symbol: str
) -> None:
    first = take(db_engine, symbol, "host/1")
    age_lease(db_engine, symbol, 10)
    second = take(db_engine, symbol, "host/2")
    assert second.epoch == first.epoch + 1
    with pytest.raises(Fenced, match="not ours after the outage"):
        resume(db_engine, symbol, "host/1", first.epoch)
    release(db_engine, symbol, second.epoch)
    with pytest.raises(Fenced):  # released is not ours either
        resume(db_engine, symbol, "host/2", second.epoch)


def test_a_keeper_in_doubt_after_an_outage_re_takes_its_epoch_in_its_next_write(db_engine, symbol):
    worker = keeper(db_engine, symbol, "host-a/100", FakeClock())
    epoch = worker.take().epoch
    age_lease(db_engine, symbol, 10.0)  # expired while PostgreSQL could not be reached
    worker.in_doubt = True
    with worker.transaction() as session:
        OrderRepository(session).insert_pending(new_order(symbol))
    assert (worker.epoch, worker.in_doubt) == (epoch, False)
    assert orders_of(db_engine, symbol) == 1
    worker.renew()  # live again under the same epoch: a plain renewal


def test_a_keeper_in_doubt_stands_down_when_another_owner_took_the_symbol(db_engine, symbol):
    worker = keeper(db_engine, symbol, "host-a/100", FakeClock())
    worker.take()
    age_lease(db_engine, symbol, 10.0)
    keeper(db_engine, symbol, "host-b/200", FakeClock()).take()
    worker.in_doubt = True
    with pytest.raises(Fenced, match="not ours after the outage"):
        worker.renew()
    assert worker.epoch is None
    assert not worker.may_place()


def test_a_keeper_that_did_not_run_past_its_deadline_re_takes_its_unclaimed_epoch(
    db_engine, symbol
):
    """A host stopped and resumed (SIGSTOP, a paused VM) finds its lease expired and
    taken by nobody: it carries on under the same epoch, as after an outage (D25, D26),
    instead of being fenced out and restarted PAUSED (found by the chaos run)."""
    clock = FakeClock()
    worker = keeper(db_engine, symbol, "host-a/100", clock)
    epoch = worker.take().epoch
    clock.now += 10.0  # stopped with its host: no renewal, no place
    age_lease(db_engine, symbol, 10.0)
    assert not worker.may_place()
    renewal = worker.renew()
    assert (renewal.epoch, worker.epoch, worker.in_doubt) == (epoch, epoch, False)
    assert worker.may_place()


def test_a_keeper_that_did_not_run_stands_down_when_another_owner_took_the_symbol(
    db_engine, symbol
):
    clock = FakeClock()
    worker = keeper(db_engine, symbol, "host-a/100", clock)
    worker.take()
    clock.now += 10.0
    age_lease(db_engine, symbol, 10.0)
    keeper(db_engine, symbol, "host-b/200", FakeClock()).take()
    with pytest.raises(Fenced, match="not ours after the outage"):
        worker.renew()
    assert worker.epoch is None
    assert not worker.may_place()


def test_a_holder_frozen_inside_a_write_transaction_does_not_keep_its_lease_row(
    db_engine: Engine, database_url: str, symbol: str
) -> None:
    """fresh12: every write transaction of a worker starts by locking its lease row; a
    worker frozen inside one kept the lock, and its successor's take waited behind it
    past the lease's expiry until its statement timeout. PostgreSQL now ends a worker's
    transaction idle for a lease's length (make_worker_engine), and the lock with it."""
    lease_s = 1.0
    engine = make_worker_engine(
        database_url, application_name="lease-frozen", idle_in_transaction_s=lease_s
    )
    frozen = Session(engine)
    try:
        lease = take(engine, symbol, "host-a/100", lease_s=lease_s)
        frozen.begin()
        leases.fence(frozen, symbol, lease.epoch)  # the row locked, then the process stops
        time.sleep(lease_s * 1.5)  # deliberate: frozen past its lease and the idle limit
        successor = take(db_engine, symbol, "host-b/200")
        assert successor.epoch == lease.epoch + 1
        with pytest.raises(DBAPIError) as woke:  # the frozen one wakes up: nothing lands
            OrderRepository(frozen).insert_pending(new_order(symbol))
        assert database_down(woke.value)  # an outage to the worker (D25): re-take, fenced
        assert orders_of(db_engine, symbol) == 0
    finally:
        frozen.close()
        engine.dispose()
