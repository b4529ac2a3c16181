"""Each endpoint names the role it needs; the caller's subject becomes the actor of its changes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar, cast

from flask import g, request

from mmsvc.adapters.auth import AuthUnavailableError, Principal, Role
from mmsvc.processes.admin.context import ctx
from mmsvc.processes.admin.errors import ApiError

F = TypeVar("F", bound=Callable[..., Any])
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


def _bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError(
            401,
            "UNAUTHENTICATED",
            "an Authorization: Bearer <token> header is required",
            headers=_CHALLENGE,
        )
    return token.strip()


def authenticate(needed: Role) -> Principal:
    """The caller, allowed `needed`: 401 without an active token, 403 without the role."""
    auth = ctx().auth
    token = "" if ctx().settings.disable_auth else _bearer_token()
    try:
        principal = auth.authenticate(token)
    except AuthUnavailableError as exc:
        raise ApiError(503, "AUTH_UNAVAILABLE", str(exc)) from None
    if principal is None:
        raise ApiError(401, "UNAUTHENTICATED", "the token is not active", headers=_CHALLENGE)
    if not principal.has(needed):
        raise ApiError(403, "FORBIDDEN", f"this call needs the role {needed.wire}")
    return principal


def requires(role: Role) -> Callable[[F], F]:
    """Decorate a view so it runs only for a caller with `role` (or one implying it)."""

    def decorate(view: F) -> F:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            g.principal = authenticate(role)
            return view(*args, **kwargs)

        guarded.required_role = role  # type: ignore[attr-defined]
        return cast(F, guarded)

    return decorate


def actor() -> str:
    """The subject of the authenticated caller, recorded as the actor of what it changes."""
    principal: Principal = g.principal
    return principal.subject
