"""The Auth Service's introspection endpoint, to CONTRACTS.md, with dev tokens from the config.

``POST /v1/auth/introspect`` {token} -> 200 {active, subject, roles}; an unknown
token is inactive with no subject and no roles. Roles are returned as
configured: that ``mm:admin`` implies the others is the admin API's rule.
"""

from __future__ import annotations

from mmsvc.devstack.exchange.config import TokenSpec
from mmsvc.devstack.exchange.web import HttpError, Request, Response

INTROSPECT = "/v1/auth/introspect"


class AuthApp:
    """Introspects the dev tokens it was given."""

    def __init__(self, tokens: tuple[TokenSpec, ...]) -> None:
        self.tokens = {spec.token: spec for spec in tokens}

    def __call__(self, request: Request) -> Response:
        """Answer ``POST /v1/auth/introspect``; 404 for any other path."""
        if request.path != INTROSPECT:
            raise HttpError(404, "NOT_FOUND", f"no route {request.path}")
        if request.method != "POST":
            raise HttpError(405, "METHOD_NOT_ALLOWED", f"{request.method} is not allowed")
        token = request.json_object().get("token")
        if not isinstance(token, str):
            raise HttpError(400, "INVALID_REQUEST", "token is required and must be a string")
        spec = self.tokens.get(token)
        if spec is None or not spec.active:
            return Response(200, {"active": False, "subject": "", "roles": []})
        return Response(200, {"active": True, "subject": spec.subject, "roles": list(spec.roles)})
