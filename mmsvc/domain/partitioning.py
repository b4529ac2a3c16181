"""Which Kafka partition a symbol sits in, as every producer computes it (ARCHITECTURE D28, D32).

Every message is keyed by its symbol and partitioned with murmur2, Kafka's
Java default (librdkafka ``partitioner=murmur2_random``), and every consumed
topic has the same partition count: so a symbol sits in the same partition
number of every topic, and a supervisor that holds that number owns the
symbol. This is the Java client's ``Utils.murmur2`` and
``toPositive(hash) % count``, bit for bit; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

_SEED = 0x9747B28C
_M = 0x5BD1E995
_MASK = 0xFFFFFFFF


def murmur2(data: bytes) -> int:
    """Kafka's murmur2 of ``data`` as the Java client returns it (a signed 32-bit int)."""
    length = len(data)
    h = (_SEED ^ length) & _MASK
    tail = length - length % 4
    for i in range(0, tail, 4):
        k = int.from_bytes(data[i : i + 4], "little")
        k = (k * _M) & _MASK
        k ^= k >> 24
        k = (k * _M) & _MASK
        h = ((h * _M) & _MASK) ^ k
    rest = data[tail:]
    if rest:  # the Java switch's fall-through: the 1-3 trailing bytes, little-endian
        h = ((h ^ int.from_bytes(rest, "little")) * _M) & _MASK
    h ^= h >> 13
    h = (h * _M) & _MASK
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def partition_of(symbol: str, partitions: int) -> int:
    """The partition of ``symbol``'s messages in a topic of ``partitions`` partitions."""
    if partitions < 1:
        raise ValueError(f"a topic has at least one partition, not {partitions}")
    return (murmur2(symbol.encode("utf-8")) & 0x7FFFFFFF) % partitions


def symbols_in(symbols: Iterable[str], held: Iterable[int], partitions: int) -> set[str]:
    """The symbols whose partition number is among ``held`` (a member's share, D28)."""
    numbers = set(held)
    return {s for s in symbols if partition_of(s, partitions) in numbers}


def mismatched_counts(counts: Mapping[str, int]) -> str | None:
    """Why these topics are not co-partitioned (unequal or missing counts), or None (D32)."""
    missing = sorted(topic for topic, count in counts.items() if count < 1)
    if missing:
        return f"topics missing: {', '.join(missing)}"
    if len(set(counts.values())) > 1:
        found = ", ".join(f"{topic}={count}" for topic, count in sorted(counts.items()))
        return f"consumed topics must have equal partition counts (D32), found {found}"
    return None
