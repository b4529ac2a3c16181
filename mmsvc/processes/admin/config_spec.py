"""The config bodies of POST and PUT, checked by the config model (issue 11)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from mmsvc.domain.symbol_config import ConfigFields, MMConfig, field_values
from mmsvc.processes.admin.validation import validated


def config_changes(body: Mapping[str, Any]) -> dict[str, Any]:
    """PUT: the fields sent, each checked against the model; the others keep their values."""
    fields = validated(ConfigFields, body)
    return {name: value for name, value in field_values(fields).items() if name in body}


def config_create(body: Mapping[str, Any]) -> MMConfig:
    """POST: a symbol and any config fields (the rest take the defaults)."""
    return validated(MMConfig, body)
