"""What every Order Service call carries: the bearer token (issue 14) and the trace context.

The simulator's own Order Service, configured to require a Bearer token, is
served over a real socket (without its Kafka feed: these calls need none), and
the client is built exactly as the service builds it, from the settings.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Iterator
from decimal import ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from mmsvc.adapters.order_service.client import (
    OrderServiceClient,
    Outcome,
    PlaceRequest,
    RequestFailure,
)
from mmsvc.config import Settings, load_settings
from mmsvc.devstack import stack
from mmsvc.devstack.exchange.config import load_config
from mmsvc.devstack.exchange.orders import OrderServiceApp
from mmsvc.devstack.exchange.venue import Venue
from mmsvc.devstack.exchange.web import HttpService, Request, Response
from mmsvc.observability import tracing

pytestmark = pytest.mark.integration

TOKEN = "mm-" + uuid.uuid4().hex


class _Recording:
    """The simulator's Order Service app, keeping the headers of each request."""

    def __init__(self, app: OrderServiceApp) -> None:
        self.app = app
        self.requests: list[Request] = []

    def __call__(self, request: Request) -> Response:
        self.requests.append(request)
        return self.app(request)


class _Records:
    """The venue's Kafka records, kept in memory: no broker in this test."""

    def __init__(self) -> None:
        self.records: list[tuple[str, str, Any]] = []

    def put(self, topic: str, key: str, record: Any) -> None:
        self.records.append((topic, key, record))


@pytest.fixture(scope="module")
def venue() -> Venue:
    config = dataclasses.replace(load_config(), order_service_tokens=(TOKEN,))
    venue = Venue(config, _Records(), seed=7)
    venue.advance(time.monotonic())  # the first book of every market
    return venue


@pytest.fixture(scope="module")
def recording(venue: Venue) -> _Recording:
    return _Recording(OrderServiceApp(venue, venue.config.order_service_tokens))


@pytest.fixture(scope="module")
def order_service(recording: _Recording) -> Iterator[str]:
    service = HttpService("order-service", "127.0.0.1", stack.free_port(), recording)
    service.start()
    try:
        yield service.url
    finally:
        service.stop()


@pytest.fixture
def token_file(tmp_path: Path) -> str:
    path = tmp_path / "order-service-token"
    path.write_text(TOKEN + "\n")
    return str(path)


def settings(url: str, **extra: str) -> Settings:
    return load_settings(
        {
            "POSTGRES_URL": "postgresql://mm@127.0.0.1:1/mm",
            "REDIS_URL": "redis://127.0.0.1:1/0",
            "KAFKA_BROKERS": "127.0.0.1:1",
            "SCHEMA_REGISTRY_URL": "http://127.0.0.1:1",
            "AUTH_SERVICE_URL": "http://127.0.0.1:1",
            "ORDER_SERVICE_URL": url,
            "SYSTEM_ACCOUNT_ID": str(uuid.uuid4()),
            **extra,
        }
    )


def resting_buy(venue: Venue) -> PlaceRequest:
    market = venue.market_view("BTCUSDT")
    price = (Decimal(str(market["mid"])) * Decimal("0.9")).quantize(Decimal("0.1"), ROUND_FLOOR)
    return PlaceRequest(str(uuid.uuid4()), "BTCUSDT", "BUY", price, Decimal("0.001"))


def test_every_call_carries_the_token_from_the_file(
    order_service: str, venue: Venue, token_file: str
) -> None:
    with OrderServiceClient.from_settings(
        settings(order_service, ORDER_SERVICE_TOKEN_FILE=token_file), 2.0
    ) as client:
        placed = client.place(resting_buy(venue))
        assert placed.outcome is Outcome.ACCEPTED, placed
        listed = client.list_open("BTCUSDT")
        assert not isinstance(listed, RequestFailure), listed
        assert [o.order_id for o in listed] == [placed.order_id]
        assert placed.order_id is not None
        assert client.cancel(placed.order_id).outcome is Outcome.CANCELED
        assert client.cancel_all(None).outcome is Outcome.OK
        assert TOKEN not in repr(client)


def test_without_the_token_the_venue_refuses_every_call(order_service: str, venue: Venue) -> None:
    with OrderServiceClient.from_settings(settings(order_service), 2.0) as client:
        placed = client.place(resting_buy(venue))
        listed = client.list_open(None)
        canceled = client.cancel_all(None)
    assert placed.outcome is Outcome.ERROR
    assert "401" in (placed.message or "")
    assert isinstance(listed, RequestFailure)
    assert "401" in listed.message
    assert canceled.outcome is Outcome.ERROR


def test_with_tracing_on_each_call_is_a_client_span_of_the_order_request(
    order_service: str, recording: _Recording, venue: Venue, token_file: str
) -> None:
    exporter = InMemorySpanExporter()
    assert tracing.configure_tracing("mmsvc", None, exporter=exporter)
    try:
        with OrderServiceClient.from_settings(
            settings(order_service, ORDER_SERVICE_TOKEN_FILE=token_file), 2.0
        ) as client:
            with tracing.tick_span("BTCUSDT"), tracing.span("mm.order_request"):
                # submit() runs the request on the client's pool (D11).
                (placed,) = client.submit([], [resting_buy(venue)]).result().places
            assert placed.outcome is Outcome.ACCEPTED, placed
            client.cancel_all(None)
        assert tracing._provider is not None
        tracing._provider.force_flush()
    finally:
        tracing.shutdown_tracing()

    spans = exporter.get_finished_spans()
    (order,) = [s for s in spans if s.name == "mm.order_request"]
    (post,) = [
        s
        for s in spans
        if s.kind is SpanKind.CLIENT
        and str((s.attributes or {}).get("url.full")).endswith("/v1/orders")
    ]
    assert post.parent is not None
    assert post.parent.span_id == order.context.span_id
    assert post.context.trace_id == order.context.trace_id
    assert post.attributes is not None
    assert post.attributes["http.response.status_code"] == 201
    assert not [s for s in spans if TOKEN in str(s.attributes)]
    (sent,) = [
        r
        for r in recording.requests
        if r.method == "POST" and r.path == "/v1/orders" and "traceparent" in r.headers
    ]
    _, trace_id, span_id, _ = sent.headers["traceparent"].split("-")
    assert (trace_id, span_id) == (f"{order.context.trace_id:032x}", f"{post.context.span_id:016x}")


@pytest.mark.usefixtures("venue")
def test_with_tracing_off_no_call_carries_a_trace(
    order_service: str, recording: _Recording, token_file: str
) -> None:
    before = len(recording.requests)
    with (
        OrderServiceClient.from_settings(
            settings(order_service, ORDER_SERVICE_TOKEN_FILE=token_file), 2.0
        ) as client,
        tracing.tick_span("BTCUSDT"),
        tracing.span("mm.order_request"),
    ):
        client.list_open(None)
    assert [r for r in recording.requests[before:] if "traceparent" in r.headers] == []
