"""The Kafka topics of CONTRACTS.md, in one place.

Market data may be shed under load and starts from the end at start-up;
money-bearing and lifecycle topics are never dropped and resume from committed
offsets (ARCHITECTURE D1, D15).
"""

from __future__ import annotations

from typing import Final

ORDERBOOK_SNAPSHOT: Final = "md.orderbook.snap.v1"
ORDERBOOK_DELTA: Final = "md.orderbook.delta.v1"
TRADES: Final = "md.trades.v1"
MARK: Final = "md.mark.v1"
ENGINE_EVENTS: Final = "engine.event.v1"
INSTRUMENT_CREATED: Final = "md.instrument.created.v1"
INSTRUMENT_UPDATED: Final = "md.instrument.updated.v1"
INSTRUMENT_HALT: Final = "md.instrument.halt.v1"
INSTRUMENT_RESUME: Final = "md.instrument.resume.v1"
QUOTE_SIMULATED: Final = "mm.quote.simulated.v1"
RISK_TRIGGERED: Final = "mm.risk.triggered.v1"
STATE_CHANGED: Final = "mm.state.changed.v1"

MARKET_DATA: Final = frozenset({ORDERBOOK_SNAPSHOT, ORDERBOOK_DELTA, TRADES, MARK})
INSTRUMENT_LIFECYCLE: Final = frozenset(
    {INSTRUMENT_CREATED, INSTRUMENT_UPDATED, INSTRUMENT_HALT, INSTRUMENT_RESUME}
)
CONSUMED: Final = MARKET_DATA | INSTRUMENT_LIFECYCLE | {ENGINE_EVENTS}
PUBLISHED: Final = frozenset({QUOTE_SIMULATED, RISK_TRIGGERED, STATE_CHANGED})
ALL: Final = CONSUMED | PUBLISHED

# D28, D32: every topic has the same partition count, so a symbol (the key,
# partitioned with murmur2) sits in the same partition number of every topic and
# one supervisor holds all of its messages. The supervisor refuses to start on
# consumed topics of unequal counts; 6 lets up to six hosts share the symbols.
PARTITION_COUNT: Final = 6
PARTITIONS: Final = dict.fromkeys(ALL, PARTITION_COUNT)


def subject(topic: str) -> str:
    """The Schema Registry subject of a topic's values (TopicNameStrategy)."""
    return f"{topic}-value"
