"""Redis: live status and heartbeats every process can read at once, and the kill flag's fast copy.

Every key lives under the store's prefix, so a shadow instance with its own
prefix never touches production's keys (ARCHITECTURE D18). Keys:
`<prefix>status` (hash: symbol -> JSON), `<prefix>heartbeats` (hash: process
-> epoch seconds) and `<prefix>kill_flag` (JSON string).

Redis is a cache (ARCHITECTURE D25): no method raises because Redis is down
or slow. A write that Redis did not take returns False (the writer writes
again on its next beat, which is what refills an empty Redis); a read Redis
cannot answer returns None, which callers show as "not known" (`live: null`),
never as "absent". After a failure the store does not call Redis again for a
short, growing pause, so a hung Redis costs a worker's or the supervisor's
loop one socket timeout per pause, not one per call. A store given a process
name keeps that process's ``mm_redis_up`` gauge: 1 once Redis answered, 0 from
the first failure until it answers again (the pause counts as down).
"""

from __future__ import annotations

import enum
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from mmsvc.adapters import metrics
from mmsvc.domain.decimals import decimal_text

log = logging.getLogger(__name__)

T = TypeVar("T")

SOCKET_TIMEOUT_S = 1.0
# Pauses after a failure: the first is short so a restart is noticed at once,
# later ones grow so a dead Redis is not knocked on every loop iteration.
PAUSE_FIRST_S = 0.5
PAUSE_MAX_S = 5.0


def _encode(value: object) -> object:
    # Money stays a decimal string on every wire (CONTRACTS.md), never a float.
    if isinstance(value, Decimal):
        return decimal_text(value)
    raise TypeError(f"cannot store {type(value).__name__} in a status")


class Beat(enum.Enum):
    """What a heartbeat write found."""

    KNOWN = "known"  # Redis already had this process's heartbeat
    NEW = "new"  # it did not: the first beat, or Redis came back empty (refill what you keep)
    UNREACHABLE = "unreachable"  # Redis did not answer (it may come back empty)


class _Breaker:
    """Turns Redis failures into a return value and skips calls for a pause after one."""

    def __init__(self, on_change: Callable[[bool], None] = lambda _up: None) -> None:
        self._lock = threading.Lock()
        self._pause_s = 0.0
        self._closed_until = 0.0  # monotonic time before which no call is made
        self._on_change = on_change  # told True/False when Redis is seen up/down (mm_redis_up)
        self._up: bool | None = None  # not known before the first call

    def _seen(self, up: bool) -> None:
        with self._lock:
            changed, self._up = self._up is not up, up
        if changed:
            self._on_change(up)

    def call(self, what: str, fn: Callable[[], T]) -> tuple[bool, T | None]:
        """(True, result) when Redis answered; (False, None) when it failed or is paused."""
        if time.monotonic() < self._closed_until:
            return False, None
        try:
            result = fn()
        except redis.RedisError as exc:
            self._failed(what, exc)
            return False, None
        self.answered()
        return True, result

    def _failed(self, what: str, exc: redis.RedisError) -> None:
        with self._lock:
            first = self._pause_s == 0.0
            self._pause_s = min(PAUSE_MAX_S, max(PAUSE_FIRST_S, self._pause_s * 2))
            self._closed_until = time.monotonic() + self._pause_s
        self._seen(False)
        if first:  # once per outage, not once per call
            log.warning(
                "Redis unavailable: live status, heartbeats and the kill flag copy wait (D25)",
                extra={"call": what, "error": f"{type(exc).__name__}: {exc}"[:300]},
            )

    def answered(self) -> None:
        """Redis answered: end any pause."""
        if self._up is not True:
            self._seen(True)
        if self._pause_s == 0.0:
            return
        with self._lock:
            recovered, self._pause_s = self._pause_s != 0.0, 0.0
            self._closed_until = 0.0
        if recovered:
            log.warning("Redis answers again: refilling what the service keeps there (D25)")


class StatusStore:
    """Reads and writes the live status of every symbol, process heartbeats and the kill flag."""

    def __init__(
        self,
        redis_url: str,
        prefix: str,
        *,
        process: str | None = None,
        socket_timeout_s: float = SOCKET_TIMEOUT_S,
    ) -> None:
        """``process`` names the caller in ``mm_redis_up`` (supervisor, admin, worker:SYMBOL);
        None keeps no gauge (tests, the break-glass command). ``socket_timeout_s``:
        REDIS_SOCKET_TIMEOUT, the most one call may cost."""
        # One immediate retry re-dials a pooled connection Redis closed when it
        # restarted; redis-py's default (10 retries with backoff) would hold a
        # loop for seconds. Timeouts are not retried: the socket timeout is the most a call costs.
        self._redis = redis.Redis.from_url(
            redis_url,
            decode_responses=True,
            socket_connect_timeout=socket_timeout_s,
            socket_timeout=socket_timeout_s,
            retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
        )
        self._breaker = (
            _Breaker() if process is None else _Breaker(partial(metrics.set_redis_up, process))
        )
        self._status_key = f"{prefix}status"
        self._heartbeats_key = f"{prefix}heartbeats"
        self._kill_key = f"{prefix}kill_flag"

    def close(self) -> None:
        """Release the connection pool."""
        self._redis.close()

    def ping(self) -> None:
        """Raise when Redis does not answer now (the readiness probe: it ignores the pause,
        and its answer ends one, so the admin API reads Redis again a second after it is back)."""
        self._redis.ping()
        self._breaker.answered()

    def publish(self, symbol: str, status: Mapping[str, object], ttl_s: float) -> bool:
        """Store a symbol's status with heartbeat_ts now; it reads as absent after ttl_s.

        A value JSON cannot carry is a bug and raises TypeError; a Redis failure returns False.
        """
        now = time.time()
        record = json.dumps(
            {**status, "heartbeat_ts": now, "expires_at": now + ttl_s}, default=_encode
        )
        return self._write("publish", lambda: self._redis.hset(self._status_key, symbol, record))

    def read(self, symbol: str) -> dict[str, Any] | None:
        """A symbol's last status (decimals as strings); None if absent, expired or unknown."""
        answered, raw = self._breaker.call(
            "read", lambda: self._redis.hget(self._status_key, symbol)
        )
        return _live(cast(str | None, raw), time.time()) if answered else None

    def read_all(self) -> dict[str, dict[str, Any]] | None:
        """Every live status in one round trip (one HGETALL); None when Redis cannot say."""
        # One hash rather than a key per symbol with its own TTL: Redis 7.0 has
        # no per-field expiry, and MGET needs the symbols first (two trips).
        answered, raw = self._breaker.call(
            "read_all", lambda: self._redis.hgetall(self._status_key)
        )
        if not answered:
            return None
        now = time.time()
        live = {symbol: _live(text, now) for symbol, text in cast(dict[str, str], raw).items()}
        return {symbol: status for symbol, status in live.items() if status is not None}

    def remove(self, symbol: str) -> bool:
        """Forget a symbol's status (its config was deleted); it expires anyway if this fails."""
        return self._write("remove", lambda: self._redis.hdel(self._status_key, symbol))

    def heartbeat(self, process_name: str) -> Beat:
        """Record that a process is alive now, and say whether Redis knew it (refill: D25)."""
        now = repr(time.time())
        answered, added = self._breaker.call(
            "heartbeat", lambda: self._redis.hset(self._heartbeats_key, process_name, now)
        )
        if not answered:
            return Beat.UNREACHABLE
        return Beat.NEW if added else Beat.KNOWN

    def heartbeats(self) -> dict[str, float] | None:
        """Each process's last heartbeat, in epoch seconds; None when Redis cannot say."""
        answered, raw = self._breaker.call(
            "heartbeats", lambda: self._redis.hgetall(self._heartbeats_key)
        )
        if not answered:
            return None
        return {name: float(ts) for name, ts in cast(dict[str, str], raw).items()}

    # The global kill flag's authority is PostgreSQL (ARCHITECTURE D3): this
    # copy only lets every process see it without a database round trip. A
    # Redis restart loses it, so whoever sets or loads the authoritative flag
    # must copy it here again (the supervisor does, on a heartbeat Redis did
    # not know); never clear a kill because this copy is absent.

    def set_kill_flag(self, reason: str, actor: str) -> bool:
        """Set the fast copy of the global kill flag with its reason, actor and time."""
        flag = json.dumps({"reason": reason, "actor": actor, "ts": time.time()})
        return self._write("set_kill_flag", lambda: self._redis.set(self._kill_key, flag))

    def clear_kill_flag(self) -> bool:
        """Clear the fast copy of the global kill flag."""
        return self._write("clear_kill_flag", lambda: self._redis.delete(self._kill_key))

    def kill_flag(self) -> dict[str, Any] | None:
        """The fast copy of the global kill flag ({reason, actor, ts}); None if unset or unknown."""
        answered, raw = self._breaker.call("kill_flag", lambda: self._redis.get(self._kill_key))
        if not answered or raw is None:
            return None
        return cast(dict[str, Any], json.loads(cast(str, raw)))

    def _write(self, what: str, fn: Callable[[], object]) -> bool:
        answered, _ = self._breaker.call(what, fn)
        return answered


def _live(raw: str | None, now: float) -> dict[str, Any] | None:
    if raw is None:
        return None
    status = cast(dict[str, Any], json.loads(raw))
    return status if status.get("expires_at", 0.0) > now else None


class StatusPublisher:
    """A worker's live status written by a thread of its own (D25).

    The quoting loop only hands over its latest status; a slow or hung Redis
    then delays the cache, never a quote. Only the newest status waits: one
    replaced before it was written is simply never written (it would expire).
    """

    def __init__(self, store: StatusStore) -> None:
        self._store = store
        self._ready = threading.Condition()
        self._latest: tuple[str, Mapping[str, object], float] | None = None
        threading.Thread(target=self._run, name="status-publisher", daemon=True).start()

    def publish(self, symbol: str, status: Mapping[str, object], ttl_s: float) -> None:
        """Queue `status` (a mapping the caller no longer changes) for writing."""
        with self._ready:
            self._latest = (symbol, status, ttl_s)
            self._ready.notify()

    def _run(self) -> None:
        while True:
            with self._ready:
                while self._latest is None:
                    self._ready.wait()
                symbol, status, ttl_s = self._latest
                self._latest = None
            try:
                self._store.publish(symbol, status, ttl_s)
            except Exception:  # a status JSON cannot carry is a bug: logged, never fatal
                log.exception("live status not written", extra={"symbol": symbol})
