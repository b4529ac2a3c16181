"""The ownership lease of a symbol and its fencing epoch (ARCHITECTURE D26, D28, D30, D32).

One row per symbol in ``mm_leases`` says who may quote it (``owner``, a
host/pid string), under which ``epoch`` and until when. A worker takes the
lease when it is free, released or expired (the epoch goes up by one),
renews it about every second and releases it when it stops. Every write
transaction of a worker (orders, fills, states, outbox) calls `fence` first:
it locks the lease row and checks the epoch and the expiry, so a worker whose
lease was taken over cannot write anything (a fencing token, as Kafka's
producer epochs).

D30: writing HALTED and the global kill flag is never refused by the fence.
A kill transaction simply does not call `fence`; everything else does.

Time is PostgreSQL's (D32): expiry is set and compared with
``clock_timestamp()`` read after the row lock is held, never with a host's
clock. The worker also keeps a local monotonic deadline
(`mmsvc.domain.lease.LeaseDeadline`) and sends no place after it.

No session state is used (no advisory lock, no prepared statement, no SET
outside a transaction), so a transaction-mode pooler can sit in front (D27).
Every function works inside the caller's transaction and never commits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Row, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from mmsvc.adapters.db.engine import database_down, unpinged
from mmsvc.adapters.db.records import KillFlag, RiskTrigger, StateRecord
from mmsvc.adapters.db.states import KillFlagRepository, StateRepository, state_record
from mmsvc.domain.lease import LeaseDeadline

# D28: a lease that ended less than this long ago is a takeover (the symbol
# carries on in its recorded state); an older one is a cold start (PAUSED).
TAKEOVER_WINDOW_S = 30.0
# D26: renewed about every second; a lease outlives a few missed renewals, and
# the local deadline stops places a margin before PostgreSQL's expiry (D32).
LEASE_S = 5.0
RENEW_EVERY_S = 1.0
DEADLINE_MARGIN_S = 1.0

# The lock and the server's time read in one round trip: the outer SELECT's
# clock_timestamp() is evaluated only once the CTE's row lock is held, so a
# wait behind another transaction never makes an expired lease look alive.
_LOCK_WITH_CLOCK = text(
    "WITH locked AS ("
    " SELECT symbol, owner, epoch, lease_expires_at, released_at"
    " FROM mm_leases WHERE symbol = :symbol FOR UPDATE"
    ") SELECT locked.*, clock_timestamp() AS db_now FROM locked"
)
_EXTEND = text(
    "UPDATE mm_leases SET lease_expires_at = clock_timestamp() + make_interval(secs => :lease_s)"
    " WHERE symbol = :symbol RETURNING lease_expires_at"
)
_TAKE = text(
    "UPDATE mm_leases SET owner = :owner, epoch = epoch + 1, taken_at = clock_timestamp(),"
    " lease_expires_at = clock_timestamp() + make_interval(secs => :lease_s), released_at = NULL"
    " WHERE symbol = :symbol RETURNING epoch, lease_expires_at"
)
_CREATE = text(
    "INSERT INTO mm_leases (symbol, owner, epoch, lease_expires_at)"
    " VALUES (:symbol, :owner, 1, clock_timestamp() + make_interval(secs => :lease_s))"
    " ON CONFLICT (symbol) DO NOTHING RETURNING epoch, lease_expires_at"
)
_RELEASE = text(
    "UPDATE mm_leases SET released_at = clock_timestamp(),"
    " lease_expires_at = least(lease_expires_at, clock_timestamp())"
    " WHERE symbol = :symbol AND epoch = :epoch AND released_at IS NULL"
    " RETURNING epoch"
)


# D26, D30: a renewal is one statement, so one round trip (autocommit: no BEGIN or
# COMMIT of its own). It locks the lease row, reads the server's clock after the
# lock (as _LOCK_WITH_CLOCK), extends the lease only when it is still this epoch's
# and live, and returns with it what the worker must learn within about a second:
# the kill flag, the symbol's recorded state and its dead-letter hold (D31). The
# row as locked is returned too, so a refusal names why (the same words as `fence`).
_RENEW = text(
    "WITH locked AS ("
    " SELECT symbol, owner, epoch, lease_expires_at, released_at"
    " FROM mm_leases WHERE symbol = :symbol FOR UPDATE"
    "), seen AS (SELECT locked.*, clock_timestamp() AS db_now FROM locked"
    "), extended AS ("
    " UPDATE mm_leases SET lease_expires_at = clock_timestamp() + make_interval(secs => :lease_s)"
    " FROM seen WHERE mm_leases.symbol = seen.symbol AND seen.epoch = :epoch"
    " AND seen.released_at IS NULL AND seen.lease_expires_at > seen.db_now"
    " RETURNING mm_leases.lease_expires_at"
    ") SELECT seen.owner, seen.epoch, seen.lease_expires_at, seen.released_at, seen.db_now,"
    " (SELECT lease_expires_at FROM extended) AS extended_to,"
    " k.active AS kill_active, k.trigger AS kill_trigger, k.reason AS kill_reason,"
    " k.actor AS kill_actor, k.updated_at AS kill_updated_at,"
    " s.state, s.trigger, s.trigger_detail, s.reason, s.actor, s.updated_at,"
    " (SELECT count(*) FROM mm_dead_letters d"
    "  WHERE d.symbol = :symbol AND d.cleared_at IS NULL) AS dead_letters,"
    " EXISTS (SELECT 1 FROM mm_dead_letters d WHERE d.symbol = :symbol"
    "  AND d.cleared_how = 'replay' AND d.replayed_at IS NULL) AS replays_pending"
    " FROM (VALUES (1)) AS one (x)"
    " LEFT JOIN seen ON true"
    " LEFT JOIN mm_kill_switch k ON k.id = 1"
    " LEFT JOIN mm_states s ON s.symbol = :symbol"
)


_HOLDERS = text(
    "SELECT symbol, owner, epoch,"
    " released_at IS NULL AND lease_expires_at > clock_timestamp() AS live FROM mm_leases"
)

_HOLDER = text(_HOLDERS.text + " WHERE symbol = :symbol")


@dataclass(frozen=True, slots=True)
class Holder:
    """Who holds a symbol's lease, for status (D28): ``live`` False means between owners."""

    owner: str
    epoch: int
    live: bool


def holder(session: Session, symbol: str) -> Holder | None:
    """The symbol's lease as PostgreSQL's clock sees it now (read only); None: never taken."""
    return holders(session, symbol).get(symbol)


def holders(session: Session, symbol: str | None = None) -> dict[str, Holder]:
    """Every symbol's lease (or `symbol`'s) as PostgreSQL's clock sees it now (read only)."""
    if symbol is None:
        rows = session.execute(_HOLDERS).all()
    else:
        rows = session.execute(_HOLDER, {"symbol": symbol}).all()
    return {r.symbol: Holder(str(r.owner), int(r.epoch), bool(r.live)) for r in rows}


class Fenced(Exception):  # noqa: N818 - the fencing term of D26, as Kafka's ProducerFenced
    """This owner's lease is gone (a newer epoch, expired or released): it must not write."""


class LeaseHeld(Exception):  # noqa: N818 - names the situation, as the lease's refusal
    """Another owner holds a live lease on the symbol; taking it is refused."""


@dataclass(frozen=True, slots=True)
class Lease:
    """A lease just taken: its epoch, its expiry on PostgreSQL's clock, takeover or cold start."""

    symbol: str
    owner: str
    epoch: int
    expires_at: datetime
    # D28/D29: the previous lease ended less than TAKEOVER_WINDOW ago, so the
    # symbol keeps its recorded state; False is a cold start (PAUSED).
    takeover: bool
    # Who held it before (host/pid), None for a new lease: a takeover from our own
    # host is a restart, not a move (mmsvc.domain.lease.moved_here).
    previous_owner: str | None = None


@dataclass(frozen=True, slots=True)
class Renewal:
    """A renewal's answer: the new expiry plus the kill flag and the symbol's state (D30).

    A plain renewal also carries the symbol's dead-letter hold (D31): how many
    uncleared dead letters it has and whether a cleared one awaits its replay.
    None when not read (a re-take after an outage): the next renewal says.
    """

    epoch: int
    expires_at: datetime
    kill: KillFlag
    state: StateRecord | None
    dead_letters: int | None = None
    replays_pending: bool = False


def take(
    session: Session,
    symbol: str,
    owner: str,
    lease_s: float,
    *,
    takeover_window_s: float = TAKEOVER_WINDOW_S,
) -> Lease:
    """Take the lease when free, released or expired (epoch + 1); LeaseHeld when it is live."""
    row = _lock(session, symbol)
    if row is None:
        return _create(session, symbol, owner, lease_s, takeover_window_s)
    if _live(row):
        left = (row.lease_expires_at - row.db_now).total_seconds()
        raise LeaseHeld(
            f"{symbol}: lease held by {row.owner} (epoch {row.epoch}) for another {left:.1f}s"
        )
    ended = row.released_at if row.released_at is not None else row.lease_expires_at
    takeover = row.db_now - ended < timedelta(seconds=takeover_window_s)
    taken = session.execute(_TAKE, {"symbol": symbol, "owner": owner, "lease_s": lease_s}).one()
    return Lease(symbol, owner, taken.epoch, taken.lease_expires_at, takeover, str(row.owner))


def renew(session: Session, symbol: str, epoch: int, lease_s: float) -> Renewal:
    """Extend a live lease of `epoch` by `lease_s` from now; Fenced when it is gone (D26, D30).

    One statement (`_RENEW`): in autocommit it is its own transaction, so a
    worker's renewal about every second costs one round trip.
    """
    row = session.execute(_RENEW, {"symbol": symbol, "epoch": epoch, "lease_s": lease_s}).one()
    if row.extended_to is None:
        why = _refusal(None if row.epoch is None else row, symbol, epoch)
        raise Fenced(why or f"{symbol}: lease of epoch {epoch} not renewed")
    return Renewal(
        epoch,
        row.extended_to,
        _kill_flag(row),
        _state(symbol, row),
        dead_letters=int(row.dead_letters),
        replays_pending=bool(row.replays_pending),
    )


def _kill_flag(row: Row[tuple[object, ...]]) -> KillFlag:
    if row.kill_active is None:  # the row was never written: inactive (as KillFlagRepository)
        return KillFlag(active=False, trigger=None, reason="", actor="system", updated_at=None)
    trigger = None if row.kill_trigger is None else RiskTrigger(row.kill_trigger)
    return KillFlag(row.kill_active, trigger, row.kill_reason, row.kill_actor, row.kill_updated_at)


def _state(symbol: str, row: Row[tuple[object, ...]]) -> StateRecord | None:
    return None if row.state is None else state_record(symbol, row)


def resume(session: Session, symbol: str, owner: str, epoch: int, lease_s: float) -> Renewal:
    """Re-take `epoch`'s lease after an outage: extended if the row is still ours (D25, D26).

    PostgreSQL's clock may have run past the lease while nobody could reach
    it; as long as no other owner took it since (same epoch, same owner, not
    released) nobody else can have quoted the symbol, so the same epoch carries
    on. Fenced (stand down) otherwise.
    """
    row = _lock(session, symbol)
    if row is None or row.epoch != epoch or row.owner != owner or row.released_at is not None:
        holder = "nobody" if row is None else f"{row.owner} (epoch {row.epoch})"
        raise Fenced(f"{symbol}: lease of epoch {epoch} not ours after the outage: {holder}")
    expires_at = session.execute(_EXTEND, {"symbol": symbol, "lease_s": lease_s}).scalar_one()
    kill = KillFlagRepository(session).get()
    state = StateRepository(session).get(symbol)
    return Renewal(epoch, expires_at, kill, state)


def release(session: Session, symbol: str, epoch: int) -> bool:
    """Give the lease up now; False when `epoch` no longer holds it (nothing to release)."""
    released = session.execute(_RELEASE, {"symbol": symbol, "epoch": epoch}).first()
    return released is not None


def fence(session: Session, symbol: str, epoch: int) -> None:
    """Lock the lease row until commit and check it is `epoch`'s and live; Fenced otherwise.

    Called first in every write transaction of a worker (D26, D32). The row
    lock serialises the write with a takeover: once a newer owner's take has
    committed, no transaction of the old epoch gets past this check. Kill
    writes (HALTED, the kill flag) skip it: a kill is never refused (D30).
    """
    refusal = _refusal(_lock(session, symbol), symbol, epoch)
    if refusal is not None:
        raise Fenced(refusal)


def _refusal(row: Row[tuple[object, ...]] | None, symbol: str, epoch: int) -> str | None:
    """Why `row` (locked, with ``db_now``) does not let `epoch` write; None when it does."""
    if row is None:
        return f"{symbol}: no lease (epoch {epoch} never took it)"
    if row.epoch != epoch:
        return f"{symbol}: lease taken over by {row.owner} (epoch {row.epoch} > {epoch})"
    if row.released_at is not None:
        return f"{symbol}: lease of epoch {epoch} was released"
    if not _live(row):
        late = (row.db_now - row.lease_expires_at).total_seconds()
        return f"{symbol}: lease of epoch {epoch} expired {late:.3f}s ago"
    return None


def _lock(session: Session, symbol: str) -> Row[tuple[object, ...]] | None:
    return session.execute(_LOCK_WITH_CLOCK, {"symbol": symbol}).first()


def _live(row: Row[tuple[object, ...]]) -> bool:
    return bool(row.released_at is None and row.lease_expires_at > row.db_now)


def _create(
    session: Session, symbol: str, owner: str, lease_s: float, takeover_window_s: float
) -> Lease:
    # ON CONFLICT: of two owners creating one symbol's lease, the second waits
    # on the first's row, inserts nothing and then finds the lease held.
    params = {"symbol": symbol, "owner": owner, "lease_s": lease_s}
    created = session.execute(_CREATE, params).first()
    if created is None:
        return take(session, symbol, owner, lease_s, takeover_window_s=takeover_window_s)
    return Lease(symbol, owner, created.epoch, created.lease_expires_at, takeover=False)


class LeaseKeeper:
    """One worker's lease: take, renew when due, fenced write transactions, the local deadline.

    The worker's composition root holds one: `take` before its first write,
    `renew` whenever `renewal_due` (its answer carries the kill flag and the
    state, D30), `may_place` before every place (D32), `transaction` for every
    write but a kill's, and `release` once its in-flight places are answered.
    A Fenced from `renew` or `transaction` means: stop placing, cancel our own
    order ids, take again only as a new owner. Not thread-safe: one loop owns it.
    """

    def __init__(
        self,
        sessions: sessionmaker[Session],
        symbol: str,
        owner: str,
        *,
        lease_s: float = LEASE_S,
        renew_every_s: float = RENEW_EVERY_S,
        margin_s: float = DEADLINE_MARGIN_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self.symbol, self.owner = symbol, owner
        self._lease_s, self._renew_every_s = lease_s, renew_every_s
        self._clock = clock
        self.deadline = LeaseDeadline(margin_s)
        self.epoch: int | None = None
        self._next_renewal = 0.0
        # D25: PostgreSQL did not answer a renewal or a write. Our epoch may have
        # expired meanwhile; the next renewal or write re-takes it (`resume`).
        self.in_doubt = False

    def take(self) -> Lease:
        """Take the lease (LeaseHeld while another owner's is live); places allowed after."""
        sent_at = self._clock()
        with self._sessions.begin() as session:
            lease = take(session, self.symbol, self.owner, self._lease_s)
        self._held(lease.epoch, sent_at)
        return lease

    def renewal_due(self) -> bool:
        """True when the next renewal is due (about every `renew_every_s`)."""
        return self.epoch is not None and self._clock() >= self._next_renewal

    @property
    def next_renewal(self) -> float:
        """When the next renewal is due on the keeper's clock; infinity with no lease held."""
        return self._next_renewal if self.epoch is not None else float("inf")

    def renew(self) -> Renewal:
        """Renew now; Fenced (and no place from then on) when the lease is gone."""
        epoch = self._epoch()
        sent_at = self._clock()
        self.in_doubt = self.in_doubt or self._lapsed(sent_at)
        try:
            if self.in_doubt:
                with self._sessions.begin() as session:
                    renewal = self._renew_or_resume(session, epoch)
            else:
                renewal = self._renew_in_one_round_trip(epoch)
        except Fenced:
            self.lost()
            raise
        except Exception as exc:
            self._doubt(exc)
            raise
        self.in_doubt = False
        self._held(epoch, sent_at)
        return renewal

    def _renew_in_one_round_trip(self, epoch: int) -> Renewal:
        """One statement, its own transaction (no BEGIN, COMMIT or pre-ping round trip).

        The statement is its own ping: a pooled connection found dead (PgBouncer
        or PostgreSQL restarted) is replaced and the renewal sent once more.
        """
        for attempt in (1, 2):
            try:
                with unpinged(), self._sessions() as session:
                    session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
                    return renew(session, self.symbol, epoch, self._lease_s)
            except DBAPIError as exc:
                if attempt == 2 or not exc.connection_invalidated:
                    raise
        raise AssertionError("unreachable")

    def _renew_or_resume(self, session: Session, epoch: int) -> Renewal:
        if self.in_doubt:  # after an outage the lease is re-taken first (D25)
            return resume(session, self.symbol, self.owner, epoch, self._lease_s)
        return renew(session, self.symbol, epoch, self._lease_s)

    def _lapsed(self, now: float) -> bool:
        """Our local deadline passed with no renewal: this process did not run (a host
        stopped and resumed, a blocked loop), so the lease may have expired unseen.

        As after an outage (D25), it is re-taken under the same epoch if the row is
        still ours, released by nobody and taken by nobody: then no other owner can
        have quoted the symbol, and no place of ours left after the deadline (D32).
        Expired-and-ours is not fenced out; only a newer epoch or a release is. The
        chaos run found it: a host resumed after a 10 s SIGSTOP had every worker
        fenced out and restarted PAUSED (D29) though nobody had taken its symbols.
        """
        return self.epoch is not None and not self.deadline.allows_place(now)

    def _doubt(self, exc: BaseException) -> None:
        """PostgreSQL did not answer: our lease may expire unseen; re-take it next (D25)."""
        if database_down(exc):
            self.in_doubt = True

    def may_place(self) -> bool:
        """True while the local deadline of a held lease has not passed (D32)."""
        return self.deadline.allows_place(self._clock())

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A write transaction fenced by our epoch (D26); commits on success."""
        epoch = self._epoch()
        sent_at = self._clock()
        resuming = self.in_doubt = self.in_doubt or self._lapsed(sent_at)
        try:
            with self._sessions.begin() as session:
                if resuming:
                    self._renew_or_resume(session, epoch)
                else:
                    fence(session, self.symbol, epoch)
                yield session
        except Fenced:
            self.lost()
            raise
        except Exception as exc:
            self._doubt(exc)
            raise
        if resuming:  # committed: the lease is ours again under the same epoch
            self.in_doubt = False
            self._held(epoch, sent_at)

    def release(self) -> bool:
        """Give the lease up (after in-flight places are answered, D32); False if not ours."""
        if self.epoch is None:
            return False
        epoch = self.epoch
        self.lost()
        with self._sessions.begin() as session:
            return release(session, self.symbol, epoch)

    def lost(self) -> None:
        """Forget the lease: no place, no fenced write until the next take."""
        self.epoch = None
        self.deadline.lost()

    def _held(self, epoch: int, sent_at: float) -> None:
        self.epoch = epoch
        self.deadline.renewed(sent_at, self._lease_s)
        self._next_renewal = sent_at + self._renew_every_s

    def _epoch(self) -> int:
        if self.epoch is None:
            raise Fenced(f"{self.symbol}: no lease held by {self.owner}")
        return self.epoch
