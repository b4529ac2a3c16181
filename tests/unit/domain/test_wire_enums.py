"""The core's enums spell exactly the symbols of the Avro contracts (CONTRACTS.md)."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Any

import pytest

from mmsvc.domain.book import BookSide
from mmsvc.domain.model import (
    InstrumentKind,
    InstrumentStatus,
    Liquidity,
    RiskTrigger,
    Side,
    SymbolState,
)

AVRO = Path(__file__).resolve().parents[3] / "avro"


def enum_symbols(schema_file: str, name: str) -> list[str]:
    found: list[list[str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "enum" and node.get("name") == name:
                found.append(node["symbols"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads((AVRO / schema_file).read_text()))
    assert found, f"no enum {name} in {schema_file}"
    return found[0]


@pytest.mark.parametrize(
    ("enum", "schema_file", "name"),
    [
        (RiskTrigger, "mm.risk.triggered.v1.avsc", "RiskTrigger"),
        (SymbolState, "mm.state.changed.v1.avsc", "MmState"),
        (Side, "engine.event.v1.avsc", "Side"),
        (Liquidity, "engine.event.v1.avsc", "Liquidity"),
        (InstrumentKind, "md.instrument.created.v1.avsc", "InstrumentKind"),
        (InstrumentStatus, "md.instrument.created.v1.avsc", "InstrumentStatus"),
        (BookSide, "md.orderbook.delta.v1.avsc", "BookSide"),
    ],
)
def test_enum_matches_the_contract(enum: type[Enum], schema_file: str, name: str) -> None:
    assert [member.value for member in enum] == enum_symbols(schema_file, name)
