"""The Metadata Service over gRPC: ``tradex.metadata.v1.InstrumentService``.

Serves the venue's instruments as they are now (a halt shows as
INSTRUMENT_STATUS_HALTED at once); NOT_FOUND for an unknown symbol, and
UNAVAILABLE while the ``metadata_unavailable`` fault is set.
"""

from __future__ import annotations

from concurrent import futures
from typing import Any

import grpc

from mmsvc.adapters.metadata.proto import metadata_pb2, metadata_pb2_grpc
from mmsvc.devstack.exchange.config import InstrumentSpec
from mmsvc.devstack.exchange.venue import Venue

_KINDS = {
    "SPOT": metadata_pb2.INSTRUMENT_KIND_SPOT,
    "PERPETUAL": metadata_pb2.INSTRUMENT_KIND_PERPETUAL,
}
_STATUSES = {
    "TRADING": metadata_pb2.INSTRUMENT_STATUS_TRADING,
    "HALTED": metadata_pb2.INSTRUMENT_STATUS_HALTED,
}


def to_proto(spec: InstrumentSpec) -> Any:
    """The Instrument message of ``spec``; decimals as plain strings."""
    return metadata_pb2.Instrument(
        symbol=spec.symbol,
        base_asset=spec.base_asset,
        quote_asset=spec.quote_asset,
        kind=_KINDS[spec.kind],
        tick_size=format(spec.tick_size, "f"),
        lot_size=format(spec.lot_size, "f"),
        min_notional=format(spec.min_notional, "f"),
        status=_STATUSES[spec.status],
    )


class InstrumentService(metadata_pb2_grpc.InstrumentServiceServicer):
    """GetInstrument and ListInstruments over the venue's instruments."""

    def __init__(self, venue: Venue) -> None:
        self.venue = venue

    def GetInstrument(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802
        """The instrument, or NOT_FOUND for a symbol the venue does not list."""
        self._check_available(context)
        spec = self.venue.instrument(request.symbol)
        if spec is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"unknown symbol {request.symbol!r}")
            raise AssertionError("unreachable: abort raises")
        return to_proto(spec)

    def ListInstruments(self, request: Any, context: grpc.ServicerContext) -> Any:  # noqa: N802, ARG002 - the servicer's signature
        """Every listed instrument, by symbol."""
        self._check_available(context)
        instruments = [to_proto(spec) for spec in self.venue.instruments()]
        return metadata_pb2.ListInstrumentsResponse(instruments=instruments)

    def _check_available(self, context: grpc.ServicerContext) -> None:
        if self.venue.current_faults().metadata_unavailable:
            context.abort(grpc.StatusCode.UNAVAILABLE, "unavailable (simulator fault)")


def serve(venue: Venue, host: str, port: int) -> grpc.Server:
    """Start the gRPC server on ``host:port``; the caller stops it."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="grpc"))
    add_servicer = metadata_pb2_grpc.add_InstrumentServiceServicer_to_server
    add_servicer(InstrumentService(venue), server)  # type: ignore[no-untyped-call]
    if server.add_insecure_port(f"{host}:{port}") == 0:
        raise OSError(f"cannot bind the Metadata gRPC server to {host}:{port}")
    server.start()
    return server
