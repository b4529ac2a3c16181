"""The simulator's Metadata gRPC service (with the service's client adapter) and Auth Service."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import grpc
import pytest
import requests

from mmsvc.adapters.metadata.client import MetadataClient, MetadataUnavailableError
from mmsvc.adapters.metadata.proto import metadata_pb2, metadata_pb2_grpc
from mmsvc.devstack import stack
from mmsvc.domain.model import Instrument, InstrumentKind, InstrumentStatus
from tests.fixtures.exchange import Exchange

pytestmark = pytest.mark.integration


@pytest.fixture
def stub(exchange: Exchange) -> Iterator[Any]:
    with grpc.insecure_channel(exchange.metadata_grpc_url) as channel:
        yield metadata_pb2_grpc.InstrumentServiceStub(channel)  # type: ignore[no-untyped-call]


def test_get_instrument_answers_with_decimal_strings_and_proto_enums(stub):
    btc = stub.GetInstrument(metadata_pb2.GetInstrumentRequest(symbol="BTCUSDT"), timeout=5)
    perp = stub.GetInstrument(metadata_pb2.GetInstrumentRequest(symbol="SOL-PERP"), timeout=5)

    assert (btc.symbol, btc.base_asset, btc.quote_asset) == ("BTCUSDT", "BTC", "USDT")
    assert (btc.tick_size, btc.lot_size, btc.min_notional) == ("0.1", "0.0001", "5")
    assert btc.kind == metadata_pb2.INSTRUMENT_KIND_SPOT
    assert btc.status == metadata_pb2.INSTRUMENT_STATUS_TRADING
    assert perp.kind == metadata_pb2.INSTRUMENT_KIND_PERPETUAL


def test_get_instrument_of_an_unknown_symbol_is_not_found(stub):
    with pytest.raises(grpc.RpcError) as raised:
        stub.GetInstrument(metadata_pb2.GetInstrumentRequest(symbol="NOPEUSDT"), timeout=5)
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND


def test_list_instruments_lists_the_demo_instruments(stub):
    listed = stub.ListInstruments(metadata_pb2.ListInstrumentsRequest(), timeout=5)
    assert {"BTCUSDT", "ETHUSDT", "SOL-PERP"} <= {i.symbol for i in listed.instruments}


def test_client_adapter_returns_domain_instruments_and_none_for_not_found(exchange):
    with MetadataClient(exchange.metadata_grpc_url, timeout_s=2) as client:
        eth = client.get_instrument("ETHUSDT")
        missing = client.get_instrument("NOPEUSDT")
        listed = client.list_instruments()

    assert eth == Instrument(
        symbol="ETHUSDT",
        base_asset="ETH",
        quote_asset="USDT",
        kind=InstrumentKind.SPOT,
        tick_size=Decimal("0.01"),
        lot_size=Decimal("0.001"),
        min_notional=Decimal("5"),
        status=InstrumentStatus.TRADING,
    )
    assert missing is None
    assert {"BTCUSDT", "ETHUSDT", "SOL-PERP"} <= {i.symbol for i in listed}


def test_client_adapter_raises_unavailable_when_nothing_listens():
    with (
        MetadataClient(f"grpc://127.0.0.1:{stack.free_port()}", timeout_s=0.3) as client,
        pytest.raises(MetadataUnavailableError) as raised,
    ):
        client.get_instrument("BTCUSDT")
    assert raised.value.code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)


@pytest.mark.parametrize(
    ("token", "expected"),
    [
        ("dev-admin-token", {"active": True, "subject": "admin@tradex.dev", "roles": ["mm:admin"]}),
        ("dev-read-token", {"active": True, "subject": "reader@tradex.dev", "roles": ["mm:read"]}),
        ("dev-norole-token", {"active": True, "subject": "nobody@tradex.dev", "roles": []}),
        ("dev-revoked-token", {"active": False, "subject": "", "roles": []}),
        ("no-such-token", {"active": False, "subject": "", "roles": []}),
    ],
)
def test_introspect_answers_from_the_dev_tokens(exchange, token, expected):
    response = requests.post(
        f"{exchange.auth_service_url}/v1/auth/introspect", json={"token": token}, timeout=5
    )
    assert (response.status_code, response.json()) == (200, expected)


def test_introspect_without_a_token_is_400(exchange):
    response = requests.post(f"{exchange.auth_service_url}/v1/auth/introspect", json={}, timeout=5)
    assert response.status_code == 400
    assert set(response.json()["error"]) == {"code", "message"}
