"""The Order Service client's pure parts: body building, decimal strings, result mapping."""

from __future__ import annotations

import socket
from decimal import Decimal
from enum import StrEnum
from itertools import islice

import pytest

from mmsvc.adapters.order_service import client as oc
from mmsvc.adapters.order_service.client import (
    Backoff,
    HttpAnswer,
    OpenOrder,
    OrderServiceClient,
    Outcome,
    PlaceRequest,
    RequestFailure,
    cancel_all_result,
    cancel_result,
    open_orders_result,
    place_body,
    place_result,
)

ACCOUNT = "00000000-0000-0000-0000-000000000001"
USER = "00000000-0000-0000-0000-000000000002"


def _req(**overrides: object) -> PlaceRequest:
    fields: dict[str, object] = {
        "client_order_id": "c-1",
        "symbol": "BTCUSDT",
        "side": "BUY",
        "price": Decimal("65000.10"),
        "quantity": Decimal("0.001"),
    }
    fields.update(overrides)
    return PlaceRequest(**fields)  # type: ignore[arg-type]


def _answer(status: int, body: object) -> HttpAnswer:
    return HttpAnswer(0.002, status, body)


def test_place_body_is_the_contract_body_with_post_only_by_default() -> None:
    body = place_body(_req(price=Decimal("6.5E+4")), ACCOUNT, USER)
    assert body == {
        "client_order_id": "c-1",
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "time_in_force": "POST_ONLY",
        "price": "65000",
        "quantity": "0.001",
        "account_id": ACCOUNT,
        "user_id": USER,
        "account_type": "SYSTEM_MARKET_MAKER",
    }


def test_place_body_sends_enum_sides_and_gtc_as_their_plain_values() -> None:
    class Side(StrEnum):
        SELL = "SELL"

    body = place_body(_req(side=Side.SELL, time_in_force="GTC"), ACCOUNT, USER)
    assert (body["side"], body["time_in_force"]) == ("SELL", "GTC")
    assert type(body["side"]) is str


@pytest.mark.parametrize(
    "overrides",
    [
        {"side": "buy"},
        {"time_in_force": "IOC"},
        {"price": 65000.1},
        {"price": Decimal("0")},
        {"quantity": Decimal("-1")},
        {"quantity": Decimal("NaN")},
    ],
)
def test_place_request_refuses_what_the_contract_cannot_carry(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=next(iter(overrides))):  # the message names the field
        _req(**overrides)


def test_201_is_accepted_with_the_order_id() -> None:
    result = place_result(_req(), _answer(201, {"order_id": "o-9", "status": "NEW"}))
    assert (result.outcome, result.order_id, result.client_order_id) == (
        Outcome.ACCEPTED,
        "o-9",
        "c-1",
    )
    assert result.elapsed_s == 0.002


def test_a_repeated_client_order_id_answered_200_is_accepted_as_the_first_order() -> None:
    result = place_result(_req(), _answer(200, {"order_id": "o-9", "client_order_id": "c-1"}))
    assert (result.outcome, result.order_id) == (Outcome.ACCEPTED, "o-9")


@pytest.mark.parametrize("status", [400, 422])
def test_400_and_422_are_rejects_with_code_and_message(status: int) -> None:
    body = {"error": {"code": "INVALID_TICK", "message": "price off tick"}}
    result = place_result(_req(), _answer(status, body))
    assert (result.outcome, result.code, result.message) == (
        Outcome.REJECTED,
        "INVALID_TICK",
        "price off tick",
    )
    assert result.order_id is None


def test_a_reject_without_an_error_body_is_still_a_reject() -> None:
    result = place_result(_req(), _answer(400, "bad request"))
    assert (result.outcome, result.code) == (Outcome.REJECTED, None)


@pytest.mark.parametrize(
    ("status", "body"),
    [(500, {"error": "boom"}), (503, ""), (201, {"status": "NEW"}), (401, {}), (201, "<html>")],
)
def test_5xx_auth_and_unexpected_bodies_are_errors(status: int, body: object) -> None:
    result = place_result(_req(), _answer(status, body))
    assert result.outcome is Outcome.ERROR
    assert f"HTTP {status}" in (result.message or "")


@pytest.mark.parametrize("failure", [Outcome.TIMEOUT, Outcome.ERROR])
def test_transport_failures_pass_through_every_mapping(failure: Outcome) -> None:
    answer = HttpAnswer(0.051, failure=failure, message="ReadTimeout")
    assert place_result(_req(), answer).outcome is failure
    assert cancel_result("o-1", answer).outcome is failure
    assert cancel_all_result(answer).outcome is failure
    listed = open_orders_result(answer)
    assert isinstance(listed, RequestFailure)
    assert (listed.outcome, listed.elapsed_s) == (failure, 0.051)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [(200, Outcome.CANCELED), (404, Outcome.NOT_FOUND), (500, Outcome.ERROR), (401, Outcome.ERROR)],
)
def test_cancel_maps_200_to_canceled_and_404_to_not_found(status: int, outcome: Outcome) -> None:
    result = cancel_result("o-1", _answer(status, {"order_id": "o-1", "status": "CANCELED"}))
    assert (result.outcome, result.order_id) == (outcome, "o-1")


def test_cancel_all_counts_what_was_canceled() -> None:
    result = cancel_all_result(_answer(200, {"canceled": 3}))
    assert (result.outcome, result.canceled) == (Outcome.OK, 3)


@pytest.mark.parametrize("body", [{"canceled": "3"}, {"canceled": True}, {}, "ok"])
def test_cancel_all_without_an_integer_count_is_an_error(body: object) -> None:
    result = cancel_all_result(_answer(200, body))
    assert (result.outcome, result.canceled) == (Outcome.ERROR, None)


def test_open_orders_parse_to_decimals() -> None:
    raw = {
        "order_id": "o-1",
        "client_order_id": "c-1",
        "symbol": "BTCUSDT",
        "side": "SELL",
        "price": "65000.10",
        "quantity": "0.001",
        "status": "PARTIALLY_FILLED",
        "remaining_quantity": "0.0004",
    }
    assert open_orders_result(_answer(200, {"orders": [raw, {**raw, "order_id": "o-2"}]})) == [
        OpenOrder(
            "o-1",
            "c-1",
            "BTCUSDT",
            "SELL",
            Decimal("65000.10"),
            Decimal("0.001"),
            "PARTIALLY_FILLED",
            Decimal("0.0004"),
        ),
        OpenOrder(
            "o-2",
            "c-1",
            "BTCUSDT",
            "SELL",
            Decimal("65000.10"),
            Decimal("0.001"),
            "PARTIALLY_FILLED",
            Decimal("0.0004"),
        ),
    ]


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (200, {"orders": [{"order_id": "o-1"}]}),
        (200, {"orders": [{"order_id": "o", "symbol": "X", "price": "abc", "quantity": "1"}]}),
        (200, {"items": []}),
        (500, {"orders": []}),
    ],
)
def test_an_unreadable_listing_is_a_failure_not_an_empty_book(status: int, body: object) -> None:
    listed = open_orders_result(_answer(status, body))
    assert isinstance(listed, RequestFailure)
    assert listed.outcome is Outcome.ERROR


def test_backoff_grows_by_its_factor_up_to_its_cap() -> None:
    delays = list(islice(Backoff(0.01, 2.0, 0.05).delays(), 5))
    assert delays == [0.01, 0.02, 0.04, 0.05, 0.05]


def test_connections_disable_nagle() -> None:
    adapter = oc._NoDelayAdapter()
    options = adapter.poolmanager.connection_pool_kw["socket_options"]
    assert (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1) in options
    assert adapter.max_retries.total == 0


def test_the_token_goes_in_the_bearer_header_and_never_in_the_repr() -> None:
    with OrderServiceClient("http://127.0.0.1:1/", ACCOUNT, USER, 0.05, token="s3cret") as client:
        assert "s3cret" not in repr(client)
        assert client._session().headers["Authorization"] == "Bearer s3cret"
