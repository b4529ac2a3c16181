"""Who is calling: Bearer tokens introspected at the Auth Service (CONTRACTS.md "Auth Service").

``POST {AUTH_SERVICE_URL}/v1/auth/introspect`` {token} answers {active,
subject, roles}. Answers are cached for a few seconds, keyed by a digest of
the token, so a dashboard polling the status does not cost an introspection
per request and a token never sits in memory as a dictionary key. Tokens are
never logged and never part of an exception message.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol

import requests

log = logging.getLogger(__name__)

INTROSPECT_PATH = "/v1/auth/introspect"
DEFAULT_TTL_S = 5.0
DEFAULT_TIMEOUT_S = 2.0
MAX_CACHED = 10_000


class Role(IntEnum):
    """The admin API's roles, ordered: each implies the ones below it (mm:admin implies all)."""

    READ = 1
    OPERATE = 2
    ADMIN = 3

    @property
    def wire(self) -> str:
        """The role's name on the wire (``mm:read``, ``mm:operate``, ``mm:admin``)."""
        return _WIRE[self]


_WIRE = {Role.READ: "mm:read", Role.OPERATE: "mm:operate", Role.ADMIN: "mm:admin"}
_BY_WIRE = {name: role for role, name in _WIRE.items()}


class AuthUnavailableError(RuntimeError):
    """The Auth Service could not be asked; the caller answers 503, never lets a request in."""


@dataclass(frozen=True, slots=True)
class Principal:
    """An authenticated caller: its subject (the actor of what it changes) and its highest role."""

    subject: str
    role: Role | None

    def has(self, needed: Role) -> bool:
        """True when the caller's role is `needed` or one that implies it."""
        return self.role is not None and self.role >= needed


def principal_from(subject: str, roles: Iterable[object]) -> Principal:
    """The principal of an active token; roles the admin API does not know are ignored."""
    known = [_BY_WIRE[r] for r in roles if isinstance(r, str) and r in _BY_WIRE]
    return Principal(subject, max(known, default=None))


ANONYMOUS = Principal("anonymous", Role.ADMIN)


class Authenticator(Protocol):
    """Turns a Bearer token into a principal, or None when the token is not active."""

    def authenticate(self, token: str) -> Principal | None: ...


class AuthDisabled:
    """DISABLE_AUTH=true: every caller is ``anonymous`` with every role (local use only)."""

    def authenticate(self, token: str) -> Principal | None:  # noqa: ARG002 - the AuthClient port
        """Always the anonymous principal."""
        return ANONYMOUS


class IntrospectionClient:
    """Introspects tokens at the Auth Service, caching each answer for ``ttl_s``; thread-safe."""

    def __init__(
        self, base_url: str, ttl_s: float = DEFAULT_TTL_S, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> None:
        self._url = base_url.rstrip("/") + INTROSPECT_PATH
        self._ttl_s = ttl_s
        self._timeout_s = timeout_s
        self._cache: dict[bytes, tuple[float, Principal | None]] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"IntrospectionClient({self._url!r})"

    def authenticate(self, token: str) -> Principal | None:
        """The token's principal, or None when inactive; AuthUnavailableError if unanswerable."""
        key = hashlib.sha256(token.encode()).digest()
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None and cached[0] > now:
            return cached[1]
        principal = self._introspect(token)
        self._remember(key, now + self._ttl_s, principal)
        return principal

    def _introspect(self, token: str) -> Principal | None:
        try:
            response = self._session().post(
                self._url, json={"token": token}, timeout=self._timeout_s
            )
            body: Any = response.json() if response.status_code == 200 else None
        except (requests.RequestException, ValueError) as exc:
            # The exception text carries the URL and the error, never the body we sent.
            raise AuthUnavailableError(f"auth service unreachable: {type(exc).__name__}") from None
        if not isinstance(body, dict):
            raise AuthUnavailableError(f"auth service answered HTTP {response.status_code}")
        if body.get("active") is not True:
            return None
        subject, roles = body.get("subject"), body.get("roles")
        if not isinstance(subject, str) or not subject or not isinstance(roles, list):
            raise AuthUnavailableError("auth service answered an active token without subject")
        return principal_from(subject, roles)

    def _remember(self, key: bytes, expires: float, principal: Principal | None) -> None:
        with self._lock:
            if len(self._cache) >= MAX_CACHED:
                now = time.monotonic()
                self._cache = {k: v for k, v in self._cache.items() if v[0] > now}
                if len(self._cache) >= MAX_CACHED:
                    self._cache.clear()
            self._cache[key] = (expires, principal)

    def _session(self) -> requests.Session:
        session: requests.Session | None = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            self._local.session = session
        return session
