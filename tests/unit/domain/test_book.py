"""The order book: snapshots, deltas, and when it stops being trusted (ARCHITECTURE D12)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from mmsvc.domain.book import WAITING_DELTAS_MAX, BookChange, BookSide, OrderBook, TopOfBook

D = Decimal
BID, ASK = BookSide.BID, BookSide.ASK


def levels(*pairs: tuple[str, str]) -> list[tuple[Decimal, Decimal]]:
    return [(D(p), D(s)) for p, s in pairs]


def book_at(sequence: int = 10, ts_ms: int = 1_000) -> OrderBook:
    book = OrderBook("BTCUSDT")
    book.apply_snapshot(
        sequence,
        levels(("100.00", "1"), ("99.99", "2")),
        levels(("100.02", "1"), ("100.03", "2")),
        ts_ms,
    )
    return book


def known_top(book: OrderBook) -> TopOfBook:
    """The book's top, which the case expects to be known."""
    top = book.top()
    assert top is not None
    return top


def change(side: BookSide, price: str, size: str) -> BookChange:
    return BookChange(side, D(price), D(size))


def test_new_book_is_unknown_until_its_first_snapshot() -> None:
    book = OrderBook("BTCUSDT")
    assert book.top() is None
    assert not book.is_known
    assert book.last_mid is None
    assert not book.apply_delta(1, [change(BID, "1", "1")], 5)


def test_snapshot_gives_best_bid_ask_mid_and_age() -> None:
    book = book_at(ts_ms=1_000)
    assert book.top() == TopOfBook(D("100.00"), D("100.02"), 1_000)
    assert known_top(book).mid == D("100.01")
    assert book.age_ms(1_250) == 250


def test_next_delta_updates_levels_and_age() -> None:
    book = book_at(10)
    assert book.apply_delta(11, [change(BID, "100.01", "3"), change(ASK, "100.02", "0")], 1_500)
    assert book.top() == TopOfBook(D("100.01"), D("100.03"), 1_500)
    assert book.sequence == 11


def test_removing_the_best_level_falls_back_to_the_next_one() -> None:
    book = book_at(10)
    book.apply_delta(11, [change(BID, "100.00", "0")], 1_100)
    assert known_top(book).best_bid == D("99.99")


def test_duplicate_delta_is_ignored() -> None:
    book = book_at(10)
    book.apply_delta(11, [change(BID, "100.01", "1")], 1_100)
    assert not book.apply_delta(11, [change(BID, "100.01", "0")], 1_200)
    assert not book.apply_delta(9, [change(BID, "100.01", "0")], 1_200)
    assert book.top() == TopOfBook(D("100.01"), D("100.02"), 1_100)
    assert book.is_known


def test_gap_in_deltas_makes_the_book_unknown_and_the_next_snapshot_restores_it() -> None:
    book = book_at(10)
    assert not book.apply_delta(12, [change(BID, "100.01", "1")], 1_100)
    assert book.top() is None
    assert not book.is_known
    assert "gap" in (book.unknown_reason or "")
    assert not book.apply_delta(13, [change(BID, "100.01", "1")], 1_200)  # waits for a snapshot
    assert book.apply_snapshot(13, levels(("101", "1")), levels(("102", "1")), 1_300)
    assert book.top() == TopOfBook(D(101), D(102), 1_300)
    assert book.apply_delta(14, [change(ASK, "101.5", "1")], 1_400)
    assert known_top(book).best_ask == D("101.5")


def test_after_a_gap_a_snapshot_no_newer_than_the_book_does_not_restore_it() -> None:
    book = book_at(10)
    book.apply_delta(12, [], 1_100)
    assert not book.apply_snapshot(10, levels(("100", "1")), levels(("101", "1")), 1_200)
    assert book.top() is None


def test_older_snapshot_is_ignored_while_the_book_is_known() -> None:
    book = book_at(10)
    book.apply_delta(11, [change(BID, "100.01", "1")], 1_100)
    assert not book.apply_snapshot(9, levels(("50", "1")), levels(("51", "1")), 1_200)
    assert book.top() == TopOfBook(D("100.01"), D("100.02"), 1_100)


def test_snapshot_at_the_same_sequence_refreshes_a_quiet_book() -> None:
    book = book_at(10, ts_ms=1_000)
    assert book.apply_snapshot(10, levels(("100.00", "1")), levels(("100.02", "1")), 4_000)
    assert book.age_ms(4_500) == 500


def test_crossed_book_is_unknown_until_the_next_snapshot() -> None:
    book = book_at(10)
    assert not book.apply_delta(11, [change(BID, "100.05", "1")], 1_100)
    assert book.top() is None
    assert "crossed" in (book.unknown_reason or "")
    assert D("100.05") not in book.depth(BID)  # refused before anything was stored (D24)
    assert not book.apply_delta(12, [change(BID, "100.05", "0")], 1_200)
    assert book.apply_snapshot(12, levels(("100", "1")), levels(("100.02", "1")), 1_300)
    assert book.top() is not None


def test_crossed_snapshot_is_unknown() -> None:
    book = OrderBook("BTCUSDT")
    book.apply_snapshot(1, levels(("101", "1")), levels(("100", "1")), 1_000)
    assert book.top() is None


def test_a_crossed_snapshot_is_not_stored_and_the_book_keeps_its_sequence() -> None:
    book = book_at(10)
    assert not book.apply_snapshot(11, levels(("101", "1")), levels(("100", "1")), 1_100)
    assert book.sequence == 10
    assert not book.is_known
    assert book.depth(BID) == {D("100.00"): D(1), D("99.99"): D(2)}
    assert book.apply_snapshot(11, levels(("100", "1")), levels(("100.02", "1")), 1_200)
    assert book.top() is not None  # the same sequence, uncrossed, restores it


def test_a_delta_that_removes_the_best_level_is_checked_against_the_next_one() -> None:
    book = book_at(10)
    # Removing the best ask (100.02) leaves 100.03: a bid at 100.025 does not cross it.
    changes = [change(ASK, "100.02", "0"), change(BID, "100.025", "1")]
    assert book.apply_delta(11, changes, 1_100)
    assert book.top() == TopOfBook(D("100.025"), D("100.03"), 1_100)
    assert not book.apply_delta(12, [change(BID, "100.03", "1")], 1_200)
    assert D("100.03") not in book.depth(BID)


def test_one_sided_book_has_no_top_but_recovers_with_deltas() -> None:
    book = book_at(10)
    book.apply_delta(11, [change(ASK, "100.02", "0"), change(ASK, "100.03", "0")], 1_100)
    assert book.top() is None
    assert book.is_known
    book.apply_delta(12, [change(ASK, "100.04", "1")], 1_200)
    assert book.top() == TopOfBook(D("100.00"), D("100.04"), 1_200)


def test_last_known_mid_survives_an_unknown_book() -> None:
    book = book_at(10)
    book.apply_delta(13, [], 1_100)
    assert book.last_mid == D("100.01")


def test_shed_message_makes_the_book_unknown() -> None:
    book = book_at(10)
    book.mark_unknown("market data shed: worker queue full")
    assert book.top() is None
    assert book.apply_snapshot(11, levels(("1", "1")), levels(("2", "1")), 2_000)


def test_zero_size_levels_in_a_snapshot_are_left_out() -> None:
    book = OrderBook("X")
    book.apply_snapshot(1, levels(("10", "0"), ("9", "1")), levels(("11", "1")), 0)
    assert book.depth(BID) == {D(9): D(1)}


prices = st.integers(1, 60).map(lambda n: D(n) / 4)
sizes = st.sampled_from([D(0), D(0), D("0.5"), D(1), D(3)])


@given(
    st.lists(
        st.lists(st.tuples(st.sampled_from([BID, ASK]), prices, sizes), max_size=6),
        max_size=40,
    )
)
def test_deltas_in_sequence_keep_the_same_levels_as_a_plain_dict(
    batches: list[list[tuple[BookSide, Decimal, Decimal]]],
) -> None:
    """Best prices always equal those of a naive model, while the book stays uncrossed."""
    book = OrderBook("X")
    model = {BID: {D(5): D(1)}, ASK: {D(20): D(1)}}
    book.apply_snapshot(0, list(model[BID].items()), list(model[ASK].items()), 0)
    for seq, batch in enumerate(batches, start=1):
        book.apply_delta(seq, [BookChange(side, p, s) for side, p, s in batch], seq)
        for side, p, s in batch:
            if s:
                model[side][p] = s
            else:
                model[side].pop(p, None)
        best_bid = max(model[BID], default=None)
        best_ask = min(model[ASK], default=None)
        if best_bid is not None and best_ask is not None and best_bid >= best_ask:
            assert book.top() is None
            assert not book.is_known
            return
        assert book.depth(BID) == model[BID]
        assert book.depth(ASK) == model[ASK]
        expected = (
            None if best_bid is None or best_ask is None else TopOfBook(best_bid, best_ask, seq)
        )
        assert book.top() == expected


def test_deltas_that_arrive_before_their_snapshot_are_applied_by_it() -> None:
    """Snapshot and delta topics are read side by side (a replay at takeover, D15)."""
    book = OrderBook("BTCUSDT")
    assert not book.apply_delta(10, [change(BID, "99.98", "1")], 900)  # older than the snapshot
    assert not book.apply_delta(11, [change(BID, "100.01", "1")], 1_100)
    assert not book.apply_delta(12, [change(ASK, "100.02", "0")], 1_200)
    assert book.apply_snapshot(
        10, levels(("100.00", "1")), levels(("100.02", "1"), ("100.03", "2")), 1_000
    )
    assert book.top() == TopOfBook(D("100.01"), D("100.03"), 1_200)
    assert book.sequence == 12
    assert book.apply_delta(13, [change(BID, "100.02", "1")], 1_300)


def test_a_missing_delta_after_the_snapshot_leaves_the_book_unknown() -> None:
    book = OrderBook("BTCUSDT")
    book.apply_delta(11, [change(BID, "100.01", "1")], 1_100)
    book.apply_delta(13, [change(BID, "100.01", "0")], 1_300)  # 12 was shed
    book.apply_snapshot(10, levels(("100.00", "1")), levels(("100.02", "1")), 1_000)
    assert book.top() is None
    assert "gap" in (book.unknown_reason or "")
    # The next snapshot takes the book back, with what waited after it.
    book.apply_delta(14, [change(ASK, "100.05", "1")], 1_400)
    assert book.apply_snapshot(13, levels(("100.00", "1")), levels(("100.06", "1")), 1_350)
    assert book.top() == TopOfBook(D("100.00"), D("100.05"), 1_400)


def test_after_a_gap_the_deltas_that_follow_wait_for_the_next_snapshot() -> None:
    book = book_at(10)
    book.apply_delta(12, [change(BID, "100.01", "1")], 1_100)  # gap: 11 missing
    book.apply_delta(13, [change(ASK, "100.05", "1")], 1_200)
    assert book.apply_snapshot(12, levels(("100.01", "1")), levels(("100.06", "1")), 1_150)
    assert book.top() == TopOfBook(D("100.01"), D("100.05"), 1_200)
    assert book.sequence == 13


def test_waiting_deltas_are_bounded_and_the_oldest_go() -> None:
    def replayed() -> OrderBook:
        book = OrderBook("BTCUSDT")
        for sequence in range(1, WAITING_DELTAS_MAX + 50):  # 1..1049: 1..49 no longer kept
            book.apply_delta(sequence, [], sequence)
        return book

    too_old = replayed()
    too_old.apply_snapshot(47, levels(("1", "1")), levels(("2", "1")), 47)
    assert "expected 48, got 50" in (too_old.unknown_reason or "")
    just_right = replayed()
    assert just_right.apply_snapshot(49, levels(("1", "1")), levels(("2", "1")), 49)
    assert just_right.sequence == WAITING_DELTAS_MAX + 49
