"""The chaos checker's logic on hand-made logs (issue 15): overlaps, fills, takeovers, states."""

from __future__ import annotations

import pytest

from mmsvc.devstack.chaos import checker
from mmsvc.devstack.chaos.checker import Disruption, VenueOrder


def order(cid: str, created: int, closed: int | None, received: int | None = None) -> VenueOrder:
    return VenueOrder(cid, "SIM1", created, closed, created if received is None else received)


def test_orders_of_one_epoch_after_another_never_overlap() -> None:
    orders = [order("a1", 0, 1_000), order("a2", 500, 2_000), order("b1", 2_000, 3_000)]
    epochs = {"a1": 1, "a2": 1, "b1": 2}

    assert checker.overlaps(orders, epochs, {("SIM1", 2): 1_900}, end_ms=5_000) == []


def test_a_new_owner_quoting_beside_the_old_owners_resting_order_is_a_violation() -> None:
    orders = [order("a1", 0, 4_000), order("b1", 3_000, 3_500), order("b2", 3_200, None)]
    epochs = {"a1": 1, "b1": 2, "b2": 2}

    found = checker.overlaps(orders, epochs, {("SIM1", 2): 2_900}, end_ms=10_000)

    assert len(found) == 1
    assert (found[0].start_ms, found[0].end_ms, found[0].epochs) == (3_000, 4_000, (1, 2))
    assert found[0].client_order_ids == ("a1", "b1", "b2")
    assert not found[0].late_alive  # a1 was sent long before, and rested beside b for 1 s


def test_an_old_order_sent_before_the_new_lease_that_came_alive_late_is_allowed_if_canceled_fast():
    # a1 was sent at 1_000 (before epoch 2 took the lease at 2_000) but came alive at 3_000.
    late = [order("a1", 3_000, 4_500, received=1_000), order("b1", 2_500, 9_000)]
    epochs = {"a1": 1, "b1": 2}

    [fast] = checker.overlaps(late, epochs, {("SIM1", 2): 2_000}, end_ms=10_000)
    assert fast.late_alive
    assert fast.duration_ms == 1_500

    slow = [order("a1", 3_000, 5_500, received=1_000), order("b1", 2_500, 9_000)]
    [too_slow] = checker.overlaps(slow, epochs, {("SIM1", 2): 2_000}, end_ms=10_000)
    assert not too_slow.late_alive  # the new owner left it resting 2.5 s


def test_an_old_order_sent_after_the_new_lease_began_is_never_excused() -> None:
    orders = [order("a1", 2_600, 2_700, received=2_500), order("b1", 2_100, 9_000)]

    [found] = checker.overlaps(orders, {"a1": 1, "b1": 2}, {("SIM1", 2): 2_000}, end_ms=10_000)

    assert not found.late_alive


def test_a_cancel_and_a_place_in_the_same_millisecond_do_not_overlap() -> None:
    orders = [order("a1", 0, 2_000), order("b1", 2_000, 3_000)]

    assert checker.overlaps(orders, {"a1": 1, "b1": 2}, {}, end_ms=5_000) == []


def test_orders_still_resting_rest_until_the_end_of_the_log_and_symbols_stand_apart() -> None:
    orders = [
        order("a1", 0, None),
        VenueOrder("b1", "SIM2", 100, None, 100),  # another symbol, another epoch: fine
        order("c1", 4_000, None),
    ]

    [found] = checker.overlaps(orders, {"a1": 1, "b1": 7, "c1": 2}, {}, end_ms=5_000)

    assert (found.symbol, found.start_ms, found.end_ms) == ("SIM1", 4_000, 5_000)


def test_orders_without_a_row_are_left_to_the_caller() -> None:
    orders = [order("a1", 0, None), order("ghost", 0, None)]

    assert checker.overlaps(orders, {"a1": 1}, {}, end_ms=1_000) == []


def test_fills_match_when_each_venue_fill_is_booked_once() -> None:
    assert checker.match_fills(["e1", "e2"], ["e2", "e1"]).ok

    match = checker.match_fills(["e1", "e2", "e3"], ["e1", "e1", "e4"])

    assert not match.ok
    assert (match.venue, match.booked) == (3, 3)
    assert match.missing == ("e2", "e3")
    assert match.unknown == ("e4",)
    assert match.duplicated == ("e1",)


def test_takeover_time_runs_from_the_disruption_to_the_first_order_of_a_newer_epoch() -> None:
    orders = [
        order("old", 500, 10_500),  # the victim's own order, epoch 3: not a takeover
        order("new", 11_000, None),
        VenueOrder("s2", "SIM2", 7_000, None, 7_000),
        VenueOrder("s2-old", "SIM2", 1_200, 1_500, 1_200),  # before the disruption
    ]
    epochs = {"old": 3, "new": 4, "s2": 9, "s2-old": 8}
    events = [
        Disruption("kill9", "h1", 1_000, {"SIM1": 3, "SIM2": 8, "SIM3": 1}),
        Disruption("restart", "h2", 2_000, {"SIM1": 3}),  # a drain is not timed
    ]

    found = checker.takeovers(events, orders, epochs, taken_at_ms={("SIM1", 4): 9_000})

    assert [(t.symbol, t.seconds) for t in found] == [("SIM1", 10.0), ("SIM2", 6.0), ("SIM3", None)]
    assert [t.lease_seconds for t in found] == [8.0, None, None]  # SIM1's lease 2 s before quotes


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([5.0], 99, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.0),
        ([float(i) for i in range(1, 101)], 99, 99.0),
    ],
)
def test_percentile_is_the_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert checker.percentile(values, q) == expected


def test_symbols_left_paused_or_halted_count_unless_halted_on_purpose() -> None:
    final = {"A": "ACTIVE", "B": "PAUSED", "C": "HALTED", "D": "HALTED"}

    assert checker.stuck(final, ["A", "B", "C", "D", "E"], halted_on_purpose=["D"]) == {
        "B": "PAUSED",
        "C": "HALTED",
        "E": "MISSING",
    }
