"""The local lease deadline: no place after the renewal's send time + lease - margin (D32)."""

from __future__ import annotations

import pytest

from mmsvc.domain.lease import LeaseDeadline, moved_here, owner_name


def test_no_place_before_the_first_take() -> None:
    assert not LeaseDeadline(margin_s=0.5).allows_place(now=100.0)


def test_place_allowed_until_send_time_plus_lease_minus_margin() -> None:
    deadline = LeaseDeadline(margin_s=0.5)
    deadline.renewed(sent_at=100.0, lease_s=3.0)
    assert deadline.allows_place(now=102.49)
    assert not deadline.allows_place(now=102.5)
    assert deadline.remaining(now=102.0) == pytest.approx(0.5)
    assert deadline.remaining(now=200.0) == 0.0


def test_a_late_answer_to_an_older_renewal_never_moves_the_deadline_back() -> None:
    deadline = LeaseDeadline(margin_s=0.5)
    deadline.renewed(sent_at=110.0, lease_s=3.0)
    deadline.renewed(sent_at=109.0, lease_s=3.0)
    assert deadline.allows_place(now=112.4)


def test_a_lost_lease_stops_places_at_once() -> None:
    deadline = LeaseDeadline(margin_s=0.5)
    deadline.renewed(sent_at=100.0, lease_s=3.0)
    deadline.lost()
    assert not deadline.allows_place(now=100.1)
    assert deadline.remaining(now=100.1) == 0.0


def test_a_lease_no_longer_than_the_margin_is_refused() -> None:
    with pytest.raises(ValueError, match="margin"):
        LeaseDeadline(margin_s=1.0).renewed(sent_at=0.0, lease_s=1.0)


def test_a_lease_taken_from_another_host_within_the_window_is_a_move() -> None:
    assert moved_here(True, owner_name("host-a", 41), "host-b")


def test_a_lease_last_held_on_this_host_is_a_restart_not_a_move() -> None:
    assert not moved_here(True, owner_name("host-b", 41), "host-b")


def test_a_lease_ended_before_the_window_or_never_held_is_a_cold_start() -> None:
    assert not moved_here(False, owner_name("host-a", 41), "host-b")
    assert not moved_here(True, None, "host-b")


def test_a_symbol_handed_back_to_the_supervisor_that_handed_it_over_is_a_move() -> None:
    """The chaos run (issue 15): a surviving host's consumer lost its whole assignment and
    was given the same partitions back 4 s later. Its supervisor never restarted, yet its
    new workers took the leases from its own previous workers and came up PAUSED: seven
    symbols paused that no restart and no operator touched. A symbol that went away
    through the group and came back is a move (D28), not a process start (D29)."""
    assert moved_here(True, owner_name("host-b", 41), "host-b", handed_back=True)


def test_handed_back_keeps_nothing_outside_the_window() -> None:
    assert not moved_here(False, owner_name("host-b", 41), "host-b", handed_back=True)
    assert not moved_here(True, None, "host-b", handed_back=True)
