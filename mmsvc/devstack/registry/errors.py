"""The registry's errors, answered with Confluent's JSON error bodies and codes."""

from __future__ import annotations

from typing import Any


class RegistryError(Exception):
    """An error the registry answers with a Confluent JSON error body."""

    def __init__(self, status: int, error_code: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message

    def body(self) -> dict[str, Any]:
        """The Confluent error body: ``{"error_code": ..., "message": ...}``."""
        return {"error_code": self.error_code, "message": self.message}


def subject_not_found(subject: str) -> RegistryError:
    """40401."""
    return RegistryError(404, 40401, f"Subject '{subject}' not found.")


def version_not_found(version: int | str) -> RegistryError:
    """40402."""
    return RegistryError(404, 40402, f"Version {version} not found.")


def schema_not_found(what: object = None) -> RegistryError:
    """40403."""
    return RegistryError(
        404, 40403, "Schema not found" if what is None else f"Schema {what} not found"
    )


def invalid_schema(reason: str) -> RegistryError:
    """42201."""
    return RegistryError(422, 42201, f"Invalid schema: {reason}")
