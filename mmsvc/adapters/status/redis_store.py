"""Redis: live status and heartbeats every process can read at once, and the kill flag's fast copy.

Every key lives under the store's prefix, so a shadow instance with its own
prefix never touches production's keys (ARCHITECTURE D18). Keys:
`<prefix>status` (hash: symbol -> JSON), `<prefix>heartbeats` (hash: process
-> epoch seconds) and `<prefix>kill_flag` (JSON string).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from decimal import Decimal
from typing import Any, cast

import redis

from mmsvc.domain.decimals import decimal_text


def _encode(value: object) -> object:
    # Money stays a decimal string on every wire (CONTRACTS.md), never a float.
    if isinstance(value, Decimal):
        return decimal_text(value)
    raise TypeError(f"cannot store {type(value).__name__} in a status")


class StatusStore:
    """Reads and writes the live status of every symbol, process heartbeats and the kill flag."""

    def __init__(self, redis_url: str, prefix: str) -> None:
        # Redis is a cache (D25): a dead one must answer fast, never hang a kill or a request.
        self._redis = redis.Redis.from_url(
            redis_url, decode_responses=True, socket_connect_timeout=1.0, socket_timeout=1.0
        )
        self._status_key = f"{prefix}status"
        self._heartbeats_key = f"{prefix}heartbeats"
        self._kill_key = f"{prefix}kill_flag"

    def close(self) -> None:
        """Release the connection pool."""
        self._redis.close()

    def publish(self, symbol: str, status: Mapping[str, object], ttl_s: float) -> None:
        """Store a symbol's status with heartbeat_ts now; it reads as absent after ttl_s."""
        now = time.time()
        record = {**status, "heartbeat_ts": now, "expires_at": now + ttl_s}
        self._redis.hset(self._status_key, symbol, json.dumps(record, default=_encode))

    def read(self, symbol: str) -> dict[str, Any] | None:
        """Return a symbol's last status (decimals as strings), or None if absent or expired."""
        raw = cast(str | None, self._redis.hget(self._status_key, symbol))
        return _live(raw, time.time())

    def read_all(self) -> dict[str, dict[str, Any]]:
        """Return every symbol's live status in one round trip (one HGETALL)."""
        # One hash rather than a key per symbol with its own TTL: Redis 7.0 has
        # no per-field expiry, and MGET needs the symbols first (two trips).
        now = time.time()
        raw = cast(dict[str, str], self._redis.hgetall(self._status_key))
        live = {symbol: _live(text, now) for symbol, text in raw.items()}
        return {symbol: status for symbol, status in live.items() if status is not None}

    def remove(self, symbol: str) -> None:
        """Forget a symbol's status (its config was deleted)."""
        self._redis.hdel(self._status_key, symbol)

    def heartbeat(self, process_name: str) -> None:
        """Record that a process is alive now."""
        self._redis.hset(self._heartbeats_key, process_name, repr(time.time()))

    def heartbeats(self) -> dict[str, float]:
        """Return each process's last heartbeat, in epoch seconds."""
        raw = cast(dict[str, str], self._redis.hgetall(self._heartbeats_key))
        return {name: float(ts) for name, ts in raw.items()}

    # The global kill flag's authority is PostgreSQL (ARCHITECTURE D3): this
    # copy only lets every process see it without a database round trip. A
    # Redis restart loses it, so whoever sets or loads the authoritative flag
    # must copy it here again; never clear a kill because this copy is absent.

    def set_kill_flag(self, reason: str, actor: str) -> None:
        """Set the fast copy of the global kill flag with its reason, actor and time."""
        flag = {"reason": reason, "actor": actor, "ts": time.time()}
        self._redis.set(self._kill_key, json.dumps(flag))

    def clear_kill_flag(self) -> None:
        """Clear the fast copy of the global kill flag."""
        self._redis.delete(self._kill_key)

    def kill_flag(self) -> dict[str, Any] | None:
        """Return the fast copy of the global kill flag ({reason, actor, ts}), or None."""
        raw = cast(str | None, self._redis.get(self._kill_key))
        return None if raw is None else cast(dict[str, Any], json.loads(raw))


def _live(raw: str | None, now: float) -> dict[str, Any] | None:
    if raw is None:
        return None
    status = cast(dict[str, Any], json.loads(raw))
    return status if status.get("expires_at", 0.0) > now else None
