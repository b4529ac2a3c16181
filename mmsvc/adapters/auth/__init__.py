"""Bearer-token authentication of the admin API (CONTRACTS.md "Auth Service")."""

from mmsvc.adapters.auth.client import (
    ANONYMOUS,
    AuthDisabled,
    Authenticator,
    AuthUnavailableError,
    IntrospectionClient,
    Principal,
    Role,
)

__all__ = [
    "ANONYMOUS",
    "AuthDisabled",
    "AuthUnavailableError",
    "Authenticator",
    "IntrospectionClient",
    "Principal",
    "Role",
]
