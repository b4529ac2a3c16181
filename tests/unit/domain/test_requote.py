"""The requote diff: keep what is close enough (queue priority), replace the rest."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from mmsvc.domain.model import NewOrder, OrderStatus, PriceSize, Quote, QuoteLevel, Side
from mmsvc.domain.requote import diff_quote
from tests.unit.domain.builders import D, order, top

BUY, SELL = Side.BUY, Side.SELL
THRESHOLD = D(5)  # bps: 0.05 at a price of 100


def quote(*levels: tuple[tuple[str, str] | None, tuple[str, str] | None]) -> Quote:
    built = tuple(
        QuoteLevel(
            i,
            None if bid is None else PriceSize(D(bid[0]), D(bid[1])),
            None if ask is None else PriceSize(D(ask[0]), D(ask[1])),
        )
        for i, (bid, ask) in enumerate(levels)
    )
    return Quote("TESTUSDT", D(100), D(20), D(0), built, 0)


def test_nothing_resting_places_every_side() -> None:
    diff = diff_quote(quote((("99.90", "1"), ("100.10", "1"))), [], THRESHOLD)
    assert diff.keep == ()
    assert diff.cancel == ()
    assert diff.place == (
        NewOrder(BUY, D("99.90"), D(1), 0),
        NewOrder(SELL, D("100.10"), D(1), 0),
    )


def test_order_within_threshold_and_same_size_is_kept() -> None:
    # |99.86 - 99.90| = 0.04 <= 99.90 x 5 / 10000 = 0.04995
    resting = order(BUY, "99.86", "1")
    diff = diff_quote(quote((("99.90", "1"), None)), [resting], THRESHOLD)
    assert [k.order for k in diff.keep] == [resting]
    assert diff.keep[0].level == 0
    assert diff.cancel == ()
    assert diff.place == ()


def test_order_beyond_threshold_is_replaced() -> None:
    resting = order(BUY, "99.85", "1")  # 0.05 > 0.04995
    diff = diff_quote(quote((("99.90", "1"), None)), [resting], THRESHOLD)
    assert diff.cancel == (resting,)
    assert diff.place == (NewOrder(BUY, D("99.90"), D(1), 0),)


def test_order_of_another_size_is_replaced_even_at_the_same_price() -> None:
    resting = order(BUY, "99.90", "2")
    diff = diff_quote(quote((("99.90", "1"), None)), [resting], THRESHOLD)
    assert diff.cancel == (resting,)
    assert len(diff.place) == 1


def test_partially_filled_order_compares_its_remaining_size() -> None:
    resting = order(BUY, "99.90", "3", filled="2", status=OrderStatus.PARTIALLY_FILLED)
    diff = diff_quote(quote((("99.90", "1"), None)), [resting], THRESHOLD)
    assert [k.order for k in diff.keep] == [resting]


def test_order_on_a_dropped_side_is_canceled() -> None:
    resting = order(SELL, "100.10", "1")
    diff = diff_quote(quote((("99.90", "1"), None)), [resting], THRESHOLD)
    assert diff.cancel == (resting,)


def test_each_order_is_kept_for_one_level_only_and_the_closest_wins() -> None:
    far, near = order(BUY, "99.87", "1"), order(BUY, "99.89", "1")
    diff = diff_quote(quote((("99.90", "1"), None), (("99.88", "1"), None)), [far, near], D(5))
    assert [(k.order, k.level) for k in diff.keep] == [(near, 0), (far, 1)]


def test_order_whose_cancel_is_in_flight_is_neither_kept_nor_canceled_again() -> None:
    going = order(BUY, "99.90", "1", status=OrderStatus.PENDING_CANCEL)
    diff = diff_quote(quote((("99.90", "1"), None)), [going], THRESHOLD)
    assert diff.keep == ()
    assert diff.cancel == ()
    assert len(diff.place) == 1


def test_order_that_would_now_cross_the_market_is_never_kept() -> None:
    resting = order(BUY, "100.02", "1")
    wanted = quote((("100.00", "1"), None))
    diff = diff_quote(wanted, [resting], D(50), top("99.99", "100.01"))
    assert diff.cancel == (resting,)


def test_zero_threshold_keeps_only_exact_prices() -> None:
    same, off = order(BUY, "99.90", "1"), order(SELL, "100.11", "1")
    diff = diff_quote(quote((("99.90", "1"), ("100.10", "1"))), [same, off], D(0))
    assert [k.order for k in diff.keep] == [same]
    assert diff.cancel == (off,)


@given(
    st.lists(
        st.tuples(st.sampled_from([BUY, SELL]), st.integers(9_900, 10_100), st.integers(1, 3)),
        max_size=8,
    ),
    st.lists(st.tuples(st.integers(0, 60), st.integers(0, 60), st.integers(1, 3)), max_size=5),
    st.integers(0, 20),
)
def test_every_resting_order_is_kept_or_canceled_and_every_level_is_served(
    resting_spec: list[tuple[Side, int, int]],
    level_spec: list[tuple[int, int, int]],
    threshold: int,
) -> None:
    resting = [order(side, D(p) / 100, D(q)) for side, p, q in resting_spec]
    levels = [
        ((str(D(9_990 - b) / 100), str(q)), (str(D(10_010 + a) / 100), str(q)))
        for b, a, q in level_spec
    ]
    wanted = quote(*levels)
    diff = diff_quote(wanted, resting, D(threshold))
    kept = [k.order for k in diff.keep]
    assert sorted(map(id, kept + list(diff.cancel))) == sorted(map(id, resting))
    assert len(diff.keep) + len(diff.place) == 2 * len(levels)
    for k in diff.keep:
        lv = wanted.levels[k.level]
        want = lv.bid if k.order.side is BUY else lv.ask
        assert want is not None
        assert k.order.remaining == want.quantity
        assert abs(k.order.price - want.price) * 10_000 <= threshold * want.price
