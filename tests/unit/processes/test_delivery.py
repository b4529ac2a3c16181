"""D1: offsets are committed only past acknowledged must-deliver messages."""

from mmsvc.processes.supervisor.delivery import DeliveryId, DeliveryTracker

FILLS = "engine.event.v1"


def d(offset: int, partition: int = 0) -> DeliveryId:
    return DeliveryId(FILLS, partition, offset)


def test_commit_stops_at_the_oldest_unacknowledged_fill() -> None:
    t = DeliveryTracker()
    for off in range(5):
        t.consumed(d(off), must_deliver=off in (1, 3))
    assert t.committable() == {(FILLS, 0): 1}
    t.acknowledged(d(1))
    assert t.committable() == {(FILLS, 0): 3}
    t.acknowledged(d(3))
    assert t.committable() == {(FILLS, 0): 5}


def test_nothing_to_commit_twice() -> None:
    t = DeliveryTracker()
    t.consumed(d(0), must_deliver=False)
    t.committed(t.committable())
    assert t.committable() == {}


def test_duplicate_ack_is_reported_and_harmless() -> None:
    t = DeliveryTracker()
    t.consumed(d(7), must_deliver=True)
    assert t.acknowledged(d(7)) is True
    assert t.acknowledged(d(7)) is False
    assert t.pending_count() == 0


def test_partitions_are_independent() -> None:
    t = DeliveryTracker()
    t.consumed(d(0, 0), must_deliver=True)
    t.consumed(d(9, 1), must_deliver=False)
    assert t.committable() == {(FILLS, 0): 0, (FILLS, 1): 10}
