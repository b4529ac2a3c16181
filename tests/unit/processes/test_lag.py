"""D8: lag per partition, stalls count, armed only after catching up."""

from mmsvc.processes.supervisor.lag import LagTracker

TP = ("md.trades.v1", 0)


def test_lag_is_zero_at_the_watermark() -> None:
    lag = LagTracker(threshold_s=10)
    lag.consumed(TP, offset=9, ts_ms=1_000, now=500.0)
    lag.watermark(TP, high=10, now=500.0)
    assert lag.lag_s(TP, now=500.0) == 0.0


def test_lag_while_working_through_a_backlog_uses_the_last_consumed_timestamp() -> None:
    lag = LagTracker(threshold_s=10)
    lag.watermark(TP, high=100, now=100.0)
    lag.consumed(TP, offset=10, ts_ms=80_000, now=100.0)
    assert lag.lag_s(TP, now=100.0) == 20.0


def test_an_old_last_message_does_not_fake_lag_after_an_idle_spell() -> None:
    lag = LagTracker(threshold_s=10)
    lag.consumed(TP, offset=0, ts_ms=0, now=0.0)
    lag.watermark(TP, high=1, now=0.0)
    lag.watermark(TP, high=2, now=3600.0)  # a new message after an hour of silence
    assert lag.lag_s(TP, now=3600.5) == 0.5


def test_a_stalled_partition_counts_as_lagging() -> None:
    lag = LagTracker(threshold_s=10)
    lag.consumed(TP, offset=0, ts_ms=0, now=0.0)
    lag.watermark(TP, high=1, now=0.0)
    assert lag.breach(assigned=[TP], now=0.0) is None  # arms: caught up
    lag.watermark(TP, high=5, now=1.0)
    assert lag.breach(assigned=[TP], now=5.0) is None
    assert lag.breach(assigned=[TP], now=12.0) == (TP, 11.0)


def test_not_armed_until_caught_up_after_start() -> None:
    lag = LagTracker(threshold_s=10)
    lag.watermark(TP, high=1000, now=0.0)
    lag.consumed(TP, offset=0, ts_ms=0, now=100.0)
    assert lag.breach(assigned=[TP], now=100.0) is None
    assert lag.armed is False
    lag.consumed(TP, offset=999, ts_ms=99_000, now=101.0)
    assert lag.breach(assigned=[TP], now=101.0) is None
    assert lag.armed is True


def test_a_backlog_read_in_one_batch_between_checks_still_counts() -> None:
    lag = LagTracker(threshold_s=2)
    lag.consumed(TP, offset=0, ts_ms=100_000, now=100.0)
    lag.watermark(TP, high=1, now=100.0)
    assert lag.breach(assigned=[TP], now=100.0) is None  # armed
    # the process was stopped for 3 s; on resume it reads the whole backlog at once
    lag.consumed(TP, offset=5, ts_ms=100_500, now=103.5)
    lag.watermark(TP, high=6, now=103.5)
    assert lag.breach(assigned=[TP], now=103.6) == (TP, 3.0)
    assert lag.breach(assigned=[TP], now=103.7) is None  # one breach per episode of old messages


def test_replaying_old_messages_before_arming_is_not_lag() -> None:
    lag = LagTracker(threshold_s=2)
    lag.consumed(TP, offset=0, ts_ms=0, now=1000.0)  # an hour-old fill replayed at start
    lag.watermark(TP, high=1, now=1000.0)
    assert lag.breach(assigned=[TP], now=1000.0) is None
    assert lag.breach(assigned=[TP], now=1000.1) is None


def test_not_armed_while_an_assigned_partition_has_not_been_seen() -> None:
    other = ("engine.event.v1", 3)
    lag = LagTracker(threshold_s=2)
    lag.consumed(TP, offset=0, ts_ms=0, now=0.0)
    lag.watermark(TP, high=1, now=0.0)
    assert lag.breach(now=0.0, assigned=[TP, other]) is None
    assert lag.armed is False  # partition 3 may still hold a replayed backlog
    lag.consumed(other, offset=99, ts_ms=0, now=1.0)  # its old backlog, read at start
    lag.watermark(other, high=100, now=1.0)
    assert lag.breach(now=1.0, assigned=[TP, other]) is None
    assert lag.armed is True


def test_a_quiet_partition_started_at_its_end_is_caught_up(  # D15: market data from the end
) -> None:
    lag = LagTracker(threshold_s=2)
    # History before we started; the consumer starts at the end and nothing new arrives.
    lag.watermark(TP, high=5000, now=0.0, from_end=True)
    assert lag.breach(now=0.0, assigned=[TP]) is None
    assert lag.armed is True
    assert lag.lag_s(TP, now=100.0) == 0.0


def test_a_money_partition_with_a_backlog_is_behind_until_read() -> None:
    fills = ("engine.event.v1", 0)
    lag = LagTracker(threshold_s=2)
    lag.watermark(fills, high=5000, now=0.0)  # resumes from committed offsets: a real backlog
    assert lag.breach(now=0.0, assigned=[fills]) is None
    assert lag.armed is False
