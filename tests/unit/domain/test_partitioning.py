"""The symbol's partition is the Java client's murmur2 (D28, D32)."""

from __future__ import annotations

import pytest

from mmsvc.domain.partitioning import mismatched_counts, murmur2, partition_of, symbols_in

# Apache Kafka's own vectors (clients' UtilsTest.testMurmur2).
JAVA_MURMUR2 = {
    b"21": -973932308,
    b"foobar": -790332482,
    b"a-little-bit-long-string": -985981536,
    b"a-little-bit-longer-string": -1486304829,
    b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971,
    b"abc": 479470107,
    b"": 275646681,
}


@pytest.mark.parametrize(("data", "expected"), JAVA_MURMUR2.items())
def test_murmur2_equals_the_java_clients(data: bytes, expected: int) -> None:
    assert murmur2(data) == expected


def test_partition_is_the_positive_hash_modulo_the_count() -> None:
    # toPositive(-790332482) = 1357151166; 1357151166 % 50 = 16 (the Java client's answer).
    assert partition_of("foobar", 50) == 16
    assert partition_of("21", 1) == 0


def test_a_symbol_keeps_its_partition_number_in_every_topic_of_one_count() -> None:
    assert len({partition_of("BTCUSDT", 6) for _ in range(3)}) == 1


def test_symbols_in_keeps_only_the_held_partitions() -> None:
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "XRPUSDT", "ADAUSDT", "DOGEUSDT"]
    held = {0, 2, 4}
    assert symbols_in(symbols, held, 6) == {s for s in symbols if partition_of(s, 6) in held}
    assert symbols_in(symbols, range(6), 6) == set(symbols)


def test_unequal_or_missing_partition_counts_are_refused() -> None:
    assert mismatched_counts({"a": 6, "b": 6}) is None
    assert "a=6, b=3" in (mismatched_counts({"a": 6, "b": 3}) or "")
    assert "missing: b" in (mismatched_counts({"a": 6, "b": 0}) or "")


def test_no_partitions_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one"):
        partition_of("BTCUSDT", 0)
