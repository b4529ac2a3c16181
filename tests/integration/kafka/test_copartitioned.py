"""The supervisor refuses consumed topics of unequal partition counts (D28, D32).

A symbol must sit in the same partition number of every consumed topic, or the
member holding its engine events would not hold its market data. A broker
whose md.instrument.halt.v1 has 3 partitions beside 6 elsewhere is refused
with one log line and exit code 2; the dev stack's topics pass.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from mmsvc.adapters.kafka import topics
from mmsvc.adapters.kafka.consumer import MarketConsumer, consumer_config
from mmsvc.devstack import stack
from mmsvc.processes.supervisor.membership import (
    EXIT_TOPICS_MISMATCH,
    TopicsNotCopartitioned,
    check_copartitioned,
)

pytestmark = pytest.mark.integration

SHORT = topics.INSTRUMENT_HALT


@pytest.fixture(scope="module")
def uneven_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker of its own whose md.instrument.halt.v1 has 3 partitions, every other 6."""
    run_dir: Path = tmp_path_factory.mktemp("uneven-broker")
    bootstrap = stack.start_broker(run_dir)
    admin = AdminClient({"bootstrap.servers": bootstrap})
    counts = {t: 3 if t == SHORT else topics.PARTITION_COUNT for t in topics.ALL}
    futures = admin.create_topics([NewTopic(t, num_partitions=n) for t, n in counts.items()])
    for future in futures.values():
        future.result(timeout=30)
    yield bootstrap
    stack.stop_process(run_dir, "broker")


def consumer(bootstrap: str) -> MarketConsumer:
    config = consumer_config(
        {"bootstrap.servers": bootstrap}, uuid.uuid4().hex, session_timeout_s=2
    )
    return MarketConsumer(config)


def test_unequal_partition_counts_refuse_start_up_with_one_line(
    uneven_broker: str, caplog: pytest.LogCaptureFixture
) -> None:
    member = consumer(uneven_broker)
    try:
        with caplog.at_level(logging.CRITICAL), pytest.raises(TopicsNotCopartitioned) as refused:
            check_copartitioned(member)
    finally:
        member.close()
    assert refused.value.code == EXIT_TOPICS_MISMATCH
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.CRITICAL]
    assert "equal partition counts" in line
    assert f"{SHORT}=3" in line


def test_the_dev_stacks_topics_are_co_partitioned(kafka_bootstrap: str) -> None:
    member = consumer(kafka_bootstrap)
    try:
        assert check_copartitioned(member) == topics.PARTITION_COUNT
    finally:
        member.close()
