"""The Metadata Service's gRPC client (CONTRACTS.md, ``tradex.metadata.v1.InstrumentService``).

What the service asks at start-up and when a config names a new symbol: an
instrument's tick, lot, min notional, kind and status, as the domain's
``Instrument``. NOT_FOUND is an answer (None), not an error; every other
failure, a timeout included, raises :class:`MetadataUnavailableError`.
"""

from __future__ import annotations

import logging
from decimal import Decimal, InvalidOperation
from types import TracebackType
from typing import Any

import grpc

from mmsvc.adapters.metadata.proto import metadata_pb2, metadata_pb2_grpc
from mmsvc.domain.model import Instrument, InstrumentKind, InstrumentStatus

log = logging.getLogger(__name__)

_KINDS = {
    metadata_pb2.INSTRUMENT_KIND_SPOT: InstrumentKind.SPOT,
    metadata_pb2.INSTRUMENT_KIND_PERPETUAL: InstrumentKind.PERPETUAL,
}
_STATUSES = {
    metadata_pb2.INSTRUMENT_STATUS_TRADING: InstrumentStatus.TRADING,
    metadata_pb2.INSTRUMENT_STATUS_HALTED: InstrumentStatus.HALTED,
}
_SCHEMES = ("grpc://", "http://", "tcp://")


class MetadataError(RuntimeError):
    """The Metadata Service could not give a usable answer."""


class MetadataUnavailableError(MetadataError):
    """The call failed (unreachable, timed out, or an error status other than NOT_FOUND)."""

    def __init__(self, method: str, code: grpc.StatusCode | None, detail: str) -> None:
        super().__init__(f"Metadata {method} failed: {code.name if code else 'ERROR'}: {detail}")
        self.code = code


class MalformedInstrumentError(MetadataError):
    """An Instrument message that breaks the contract (unknown enum, bad decimal string)."""


def grpc_target(url: str) -> str:
    """A gRPC target from METADATA_SERVICE_GRPC_URL (``host:port``, scheme tolerated)."""
    for scheme in _SCHEMES:
        if url.startswith(scheme):
            return url[len(scheme) :].rstrip("/")
    return url


def to_instrument(message: Any) -> Instrument:
    """The domain Instrument of an Instrument message; MalformedInstrumentError if invalid."""
    kind, status = _KINDS.get(message.kind), _STATUSES.get(message.status)
    if kind is None or status is None:
        raise MalformedInstrumentError(
            f"{message.symbol}: kind {message.kind} or status {message.status} is unspecified"
        )
    try:
        return Instrument(
            symbol=message.symbol,
            base_asset=message.base_asset,
            quote_asset=message.quote_asset,
            kind=kind,
            tick_size=_decimal(message.tick_size),
            lot_size=_decimal(message.lot_size),
            min_notional=_decimal(message.min_notional),
            status=status,
        )
    except (InvalidOperation, ValueError) as exc:
        raise MalformedInstrumentError(f"{message.symbol}: {exc}") from exc


def _decimal(text: str) -> Decimal:
    value = Decimal(text)
    if not value.is_finite():
        raise ValueError(f"{text!r} is not a finite decimal")
    return value


class MetadataClient:
    """A channel to the Metadata Service; each call has its own deadline."""

    def __init__(self, url: str, timeout_s: float = 2.0, wait_for_ready: bool = False) -> None:
        self.target = grpc_target(url)
        self.timeout_s = timeout_s
        self.wait_for_ready = wait_for_ready
        self._channel = grpc.insecure_channel(self.target)
        self._stub = metadata_pb2_grpc.InstrumentServiceStub(self._channel)  # type: ignore[no-untyped-call]

    def get_instrument(self, symbol: str) -> Instrument | None:
        """The instrument, or None when the service does not know the symbol."""
        request = metadata_pb2.GetInstrumentRequest(symbol=symbol)
        try:
            message = self._stub.GetInstrument(
                request, timeout=self.timeout_s, wait_for_ready=self.wait_for_ready
            )
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                return None
            raise MetadataUnavailableError("GetInstrument", exc.code(), exc.details()) from exc
        return to_instrument(message)

    def list_instruments(self) -> list[Instrument]:
        """Every instrument the service lists; a malformed one is logged and left out."""
        request = metadata_pb2.ListInstrumentsRequest()
        try:
            response = self._stub.ListInstruments(
                request, timeout=self.timeout_s, wait_for_ready=self.wait_for_ready
            )
        except grpc.RpcError as exc:
            raise MetadataUnavailableError("ListInstruments", exc.code(), exc.details()) from exc
        instruments = []
        for message in response.instruments:
            try:
                instruments.append(to_instrument(message))
            except MalformedInstrumentError as exc:
                log.warning("ignoring a malformed instrument: %s", exc)
        return instruments

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> MetadataClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
