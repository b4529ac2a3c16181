"""D8: lag is how far the consumer is behind the log, never how old an event's timestamp is."""

from mmsvc.processes.supervisor.lag import BLIND_S, BROKER_SILENT_S, LagTracker

TP = ("md.trades.v1", 0)
FILLS = ("engine.event.v1", 3)


def caught_up(lag: LagTracker, tp: tuple[str, int] = TP, *, offset: int, now: float) -> None:
    """Consume up to ``offset`` (stamped ``now``) and see the watermark right behind it."""
    lag.polled(now)
    lag.consumed(tp, offset, int(now * 1000), int(now * 1000), now)
    lag.watermark(tp, high=offset + 1, now=now)


def test_lag_is_zero_at_the_watermark() -> None:
    lag = LagTracker(threshold_s=10)
    lag.consumed(TP, 9, 1_000, 1_000, now=500.0)
    lag.watermark(TP, high=10, now=500.0)
    assert lag.lag_s(TP, now=500.0) == 0.0


def test_an_old_producer_timestamp_is_not_lag_while_the_consumer_keeps_up() -> None:
    # Scenario 10: a record stamped a minute before it reached the broker (a producer
    # that queued it, or stamps event time) is consumed as soon as it is there.
    lag = LagTracker(threshold_s=10)
    for offset in range(0, 480):  # one message every 0.25 s, each stamped 60 s earlier
        now = offset * 0.25
        lag.polled(now)
        lag.consumed(FILLS, offset, int((now - 60) * 1000), int((now - 60) * 1000), now)
        lag.watermark(FILLS, high=offset + 1, now=now + 0.01)
        assert lag.breach(now=now + 0.01, assigned=[FILLS]) is None
        assert lag.lag_s(FILLS, now=now + 0.01) == 0.0
    assert lag.armed is True


def test_while_behind_lag_is_the_last_consumed_timestamp_capped_by_the_time_since_caught_up() -> (
    None
):
    lag = LagTracker(threshold_s=10)
    caught_up(lag, offset=0, now=100.0)
    lag.watermark(TP, high=50, now=101.0)  # 49 messages arrived; we read one of them
    lag.consumed(TP, 1, 99_000, 99_000, now=103.0)
    assert lag.lag_s(TP, now=103.0) == 3.0  # not 4 s: we were at the watermark at 100 s
    lag.consumed(TP, 2, 101_500, 101_500, now=103.5)
    assert lag.lag_s(TP, now=104.0) == 2.5  # now - ts of the last consumed


def test_an_old_last_message_does_not_fake_lag_after_an_idle_spell() -> None:
    lag = LagTracker(threshold_s=10)
    caught_up(lag, offset=0, now=0.0)
    lag.watermark(TP, high=1, now=3599.0)  # an hour of silence, at the watermark
    lag.watermark(TP, high=2, now=3600.0)  # then a new message
    assert lag.lag_s(TP, now=3600.5) == 1.5  # since we were last known caught up


def test_a_stalled_partition_counts_as_lagging() -> None:
    lag = LagTracker(threshold_s=10)
    caught_up(lag, offset=0, now=0.0)
    assert lag.breach(assigned=[TP], now=0.0) is None  # arms: caught up
    lag.watermark(TP, high=5, now=1.0)
    assert lag.breach(assigned=[TP], now=5.0) is None
    assert lag.breach(assigned=[TP], now=12.0) == (TP, 12.0)  # last consumed: ts 0


def test_not_armed_until_caught_up_after_start() -> None:
    lag = LagTracker(threshold_s=10)
    lag.watermark(TP, high=1000, now=0.0)
    lag.consumed(TP, 0, 0, 0, now=100.0)
    assert lag.breach(assigned=[TP], now=100.0) is None
    assert lag.armed is False
    lag.consumed(TP, 999, 0, 99_000, now=101.0)
    lag.watermark(TP, high=1000, now=101.0)
    assert lag.breach(assigned=[TP], now=101.0) is None
    assert lag.armed is True


def test_a_backlog_read_in_one_batch_after_the_process_was_stopped_still_counts() -> None:
    lag = LagTracker(threshold_s=2)
    caught_up(lag, offset=0, now=100.0)
    assert lag.breach(assigned=[TP], now=100.0) is None  # armed
    # SIGSTOP for 3.5 s. On resume the cached watermark is still the old one...
    lag.polled(103.5)
    lag.watermark(TP, high=1, now=103.5)
    assert lag.breach(assigned=[TP], now=103.5) is None
    # ...and the backlog arrives in one batch, read whole before the next check.
    lag.polled(103.51)
    lag.consumed(TP, 5, 100_010, 103_400, now=103.51)
    lag.watermark(TP, high=6, now=103.6)
    found = lag.breach(assigned=[TP], now=103.6)
    assert found is not None
    assert found[0] == TP
    assert round(found[1], 2) == 3.5
    assert lag.breach(assigned=[TP], now=103.7) is None  # one breach per episode


def test_a_stale_watermark_after_a_loop_gap_is_no_evidence_of_being_caught_up() -> None:
    lag = LagTracker(threshold_s=2)
    caught_up(lag, offset=0, now=100.0)
    lag.polled(104.0)  # the loop did not run for 4 s
    lag.watermark(TP, high=1, now=104.0)  # cached, as old as the gap
    lag.polled(104.0 + BLIND_S / 2)
    lag.consumed(TP, 3, 100_500, 103_900, now=104.0 + BLIND_S / 2)
    assert lag.by_topic(now=104.6)[TP[0]] >= 3.5


def test_a_silent_broker_counts_as_lag_once_it_has_been_silent_too_long() -> None:
    lag = LagTracker(threshold_s=10)
    lag.broker_heard(0.0)
    caught_up(lag, offset=0, now=0.0)
    assert lag.breach(assigned=[TP], now=0.0) is None  # armed
    # The broker stops answering (SIGSTOP): the cached watermark says caught up.
    for second in range(1, 12):
        lag.polled(float(second))
        lag.watermark(TP, high=1, now=float(second))
    assert lag.lag_s(TP, now=BROKER_SILENT_S - 0.5) == 0.0
    assert lag.breach(assigned=[TP], now=11.0) == (TP, 11.0)


def test_replaying_old_messages_before_arming_is_not_lag() -> None:
    lag = LagTracker(threshold_s=2)
    lag.consumed(TP, 0, 0, 0, now=1000.0)  # an hour-old fill replayed at start
    lag.watermark(TP, high=1, now=1000.0)
    assert lag.breach(assigned=[TP], now=1000.0) is None
    assert lag.breach(assigned=[TP], now=1000.1) is None


def test_a_partition_assigned_again_is_armed_only_once_it_caught_up() -> None:
    lag = LagTracker(threshold_s=2)
    caught_up(lag, FILLS, offset=10, now=0.0)
    assert lag.breach(assigned=[FILLS], now=0.0) is None  # armed
    lag.forget([FILLS])  # revoked, then assigned again: replays from the committed offset
    lag.watermark(FILLS, high=500, now=5.0)
    lag.consumed(FILLS, 200, 0, 1_000, now=5.0)
    assert lag.breach(assigned=[FILLS], now=5.0) is None


def test_not_armed_while_an_assigned_partition_has_not_been_seen() -> None:
    lag = LagTracker(threshold_s=2)
    caught_up(lag, offset=0, now=0.0)
    assert lag.breach(now=0.0, assigned=[TP, FILLS]) is None
    assert lag.armed is False  # partition 3 may still hold a replayed backlog
    lag.consumed(FILLS, 99, 0, 0, now=1.0)  # its old backlog, read at start
    lag.watermark(FILLS, high=100, now=1.0)
    assert lag.breach(now=1.0, assigned=[TP, FILLS]) is None
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


def test_worst_is_the_current_lag_of_the_worst_partition() -> None:
    lag = LagTracker(threshold_s=10)
    caught_up(lag, TP, offset=0, now=0.0)
    caught_up(lag, FILLS, offset=0, now=0.0)
    lag.watermark(FILLS, high=3, now=1.0)
    assert lag.worst_s(now=4.0) == 4.0  # the last consumed was stamped 0 s


def test_a_member_stopped_past_its_session_timeout_judges_no_lag_of_partitions_it_lost() -> None:
    """A host frozen 10 s (SIGSTOP, a partition) was expelled from the group: the
    partitions it held belong to another member now. Its own backlog on resume is
    not a lag of the deployment; found by the chaos run (issue 15), where it made a
    global KAFKA_LAG kill that halted every symbol on every host."""
    lag = LagTracker(threshold_s=10)
    caught_up(lag, offset=0, now=100.0)
    assert lag.breach(assigned=[TP], now=100.0) is None  # armed
    lag.polled(110.5)  # resumed after 10.5 s
    lag.consumed(TP, 5, 100_010, 110_400, now=110.5)
    lag.watermark(TP, high=6, now=110.6)
    assert lag.breach(assigned=[TP], now=110.6) is None
    assert lag.breach(assigned=[TP], now=111.0) is None


def test_the_expulsion_gap_is_the_groups_session_timeout() -> None:
    """The consumer's session.timeout.ms and the tracker's expulsion rule are one setting
    (KAFKA_SESSION_TIMEOUT), with heartbeats three times within it and at least every
    HEARTBEAT_MAX_MS."""
    from mmsvc.adapters.kafka.consumer import HEARTBEAT_MAX_MS, consumer_config  # noqa: PLC0415

    config = consumer_config({"bootstrap.servers": "127.0.0.1:9092"}, "g", session_timeout_s=1)
    assert config["session.timeout.ms"] == 1000
    assert config["heartbeat.interval.ms"] == 333
    default = consumer_config({"bootstrap.servers": "127.0.0.1:9092"}, "g")
    assert default["session.timeout.ms"] == 6000
    assert default["heartbeat.interval.ms"] == HEARTBEAT_MAX_MS
    lag = LagTracker(threshold_s=1, expelled_after_s=2)
    caught_up(lag, offset=0, now=100.0)
    assert lag.breach(assigned=[TP], now=100.0) is None  # armed
    lag.polled(102.5)  # expelled: a 2.5 s gap past a 2 s session timeout
    lag.consumed(TP, 1, 100_000, 102_400, now=102.5)  # waited 2.5 s: over 1 s if judged
    lag.watermark(TP, high=2, now=102.5)
    assert lag.breach(assigned=[TP], now=102.6) is None


def test_a_partition_resumed_at_its_end_from_a_commit_arms_the_trigger() -> None:
    """Nothing new after the committed offset: no message ever says where the consumer
    is, only its position does (a restarted supervisor beside a quiet partition)."""
    lag = LagTracker(threshold_s=10)
    lag.polled(100.0)
    lag.watermark(TP, high=42, now=100.0)
    assert lag.breach(assigned=[TP], now=100.0) is None
    assert not lag.armed  # without the position: 42 messages behind, for ever
    lag.watermark(TP, high=42, now=100.5, position=42)
    lag.breach(assigned=[TP], now=100.5)
    assert lag.armed
    assert lag.lag_s(TP, 101.0) == 0.0


def test_a_member_woken_past_its_session_timeout_takes_no_stale_evidence_as_caught_up() -> None:
    """The chaos run's third 10-minute run (issue 15): h2 SIGSTOPped for 10 s, and on
    SIGCONT its housekeeping read the cached watermark (the position was at it before
    the stop) with the broker last heard before the stop too. The tracker had
    forgotten the partitions (expelled) but took that stale pair as "caught up 10 s
    ago", armed, and the first fresh watermark made a lag of "10.3s > 10s": a global
    KAFKA_LAG kill of every symbol on every host. Evidence older than the resume is
    not evidence of being caught up."""
    lag = LagTracker(threshold_s=10)
    lag.broker_heard(100.0)
    caught_up(lag, offset=0, now=100.0)
    assert lag.breach(assigned=[TP], now=100.0) is None  # armed
    lag.polled(110.3)  # woken: an empty batch, 10.3 s after the last poll
    lag.watermark(TP, high=1, now=110.3, position=1)  # cached high, stats not fresh
    assert lag.breach(assigned=[TP], now=110.3) is None
    lag.polled(110.4)  # the first fetch after the stop brings the backlog
    lag.consumed(TP, 5, 100_010, 110_300, now=110.4)
    lag.watermark(TP, high=9, now=110.5, position=6)
    assert lag.breach(assigned=[TP], now=110.5) is None
    lag.broker_heard(110.5)
    lag.polled(110.6)
    lag.consumed(TP, 8, 110_350, 110_500, now=110.6)
    lag.watermark(TP, high=9, now=110.7, position=9)
    assert lag.breach(assigned=[TP], now=110.7) is None
    assert lag.breach(assigned=[TP], now=111.0) is None


def test_after_a_wake_a_fresh_lag_is_still_caught() -> None:
    """The rule above must not blind the tracker: once the broker has answered since the
    resume and the partition was caught up, a partition that stops advancing counts."""
    lag = LagTracker(threshold_s=2)
    lag.broker_heard(100.0)
    caught_up(lag, offset=0, now=100.0)
    lag.polled(110.0)  # expelled and woken
    lag.polled(110.2)
    lag.broker_heard(110.3)  # the broker answers after the wake and the new consumption
    lag.consumed(TP, 1, 110_000, 110_100, now=110.2)
    lag.watermark(TP, high=2, now=111.5, position=2)  # past BLIND_S, broker fresh
    assert lag.breach(assigned=[TP], now=111.5) is None  # arms
    lag.broker_heard(114.0)
    lag.polled(114.0)
    lag.watermark(TP, high=50, now=114.0, position=2)  # stuck at 2 since 111.5
    lag.watermark(TP, high=50, now=116.0, position=2)
    lag.broker_heard(116.0)
    found = lag.breach(assigned=[TP], now=116.0)
    assert found is not None
    assert found[1] > 2


def test_a_partition_assigned_again_is_not_caught_up_on_a_broker_answer_from_before() -> None:
    """fresh24 (issue 15): a woken host held no partition for 4 s, so its statistics
    (which skip brokers without partitions) kept the broker's last answer from before.
    Assigned a book partition again, it took that answer as "caught up", and its 10 s
    replay (D15) read as a backlog of 4.8 s: a global kill. Caught up needs an answer
    heard since the partition was assigned."""
    lag = LagTracker(threshold_s=3)
    lag.broker_heard(100.0)
    for tick in range(46):  # the loop runs on, holding nothing: no statistics of a broker
        lag.polled(100.0 + tick / 10)
    lag.watermark(TP, high=50, now=104.5, from_end=True)  # assigned: the cached high
    assert lag.breach(assigned=[TP], now=104.5) is None  # arms (at the watermark)
    lag.polled(104.6)
    lag.consumed(TP, 55, 94_600, 104_500, now=104.6)  # the book's replay, 10 s back
    assert lag.breach(assigned=[TP], now=104.7) is None
    lag.broker_heard(104.8)
    lag.polled(104.9)
    lag.watermark(TP, high=56, now=104.9, position=56)
    lag.polled(105.0)
    lag.consumed(TP, 56, 104_950, 104_950, now=105.0)
    assert lag.breach(assigned=[TP], now=105.0) is None
