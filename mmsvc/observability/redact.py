"""Removes secrets from log text and fields: bearer tokens, Authorization values,
URL passwords, and the value of any key that names a token, password or secret.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

MASK = "***"
# Words that mark a secret, not a secret (S105).
_SECRET_WORDS = r"(?:token|password|passwd|pwd|secret|api[_-]?key|authorization|credentials?)"  # noqa: S105
_SECRET_KEY = re.compile(_SECRET_WORDS, re.IGNORECASE)
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")
_AUTHORIZATION = re.compile(
    r"(\b(?:proxy-)?authorization\b[\"']?\s*[:=]\s*[\"']?)[^\"'\r\n,;}]+", re.IGNORECASE
)
_BEARER = re.compile(r"\bbearer\s+[A-Za-z0-9\-._~+/]+=*", re.IGNORECASE)
# key=value, key: value, "key": "value" and ?key=value for any key naming a secret.
_KEY_VALUE = re.compile(
    rf"(\b[\w-]*{_SECRET_WORDS}[\w-]*[\"']?\s*[:=]\s*[\"']?)(?!\*\*\*)[^\s\"',;&}}\])]+",
    re.IGNORECASE,
)


def redact_url(url: str) -> str:
    """Return the URL with any password replaced, safe to print or log."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparsable url>"
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def redact_text(text: str) -> str:
    """The text with every secret it shows replaced by ``***``."""
    if "://" in text:
        text = _URL.sub(lambda m: redact_url(m.group()), text)
    text = _AUTHORIZATION.sub(rf"\1{MASK}", text)
    text = _BEARER.sub(f"Bearer {MASK}", text)
    return _KEY_VALUE.sub(rf"\1{MASK}", text)


def redact_fields(fields: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``fields`` with secret-named keys masked and every text value redacted."""
    return {k: MASK if _SECRET_KEY.search(k) else _redact_value(v) for k, v in fields.items()}


def _redact_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return redact_fields({str(k): v for k, v in value.items()})
    if isinstance(value, list | tuple | set | frozenset):
        return [_redact_value(v) for v in value]
    # Anything else is logged through str(): redact what that shows (a settings
    # object's repr holds its URLs).
    return redact_text(str(value))
