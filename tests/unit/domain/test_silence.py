"""The judge's own stall is no evidence of a peer's silence (D17, D27, D28)."""

from __future__ import annotations

import pytest

from mmsvc.domain.silence import LoopGap


def test_regular_checks_are_no_stall() -> None:
    gap = LoopGap(2.0)
    assert [gap.stalled(t) for t in (0.0, 0.5, 1.0, 2.9)] == [False, False, False, False]


def test_a_check_after_a_longer_gap_is_a_stall_once() -> None:
    gap = LoopGap(2.0)
    gap.stalled(0.0)
    assert gap.stalled(10.0)
    assert gap.last_s == 10.0  # what the stall's log line reports
    assert not gap.stalled(10.5)


def test_the_gap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        LoopGap(0)
