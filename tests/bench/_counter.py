"""A counting worker for the router benchmark: one process per symbol, as the service has.

It PULLs what the bench pushes (receive high-water mark 1000, as a real
worker), counts every message, acknowledges must-deliver ones over a DEALER
the way a worker does (one ACK per drained batch, D1), and on the END frame
reports its count and when it received its last message (CLOCK_MONOTONIC,
which every process on the machine shares), then starts counting afresh.
It decodes nothing, so it is never the bottleneck the benchmark measures.

    python -m tests.bench._counter SYMBOL DATA_ENDPOINT CONTROL_ENDPOINT
"""

from __future__ import annotations

import json
import struct
import sys
import time

import zmq

from mmsvc.adapters.zmq import protocol

END = b"__end__"
QUIT = b"__quit__"
BATCH = 500
_META = struct.Struct(">iqq?")  # protocol.pack_data's meta frame: partition, offset, ts, must_ack


def _json_frame(message: object) -> bytes:
    """One JSON control frame, as the protocol encodes its messages."""
    return json.dumps(message, separators=(",", ":"), default=str).encode()


def serve(symbol: str, data_endpoint: str, control_endpoint: str) -> None:
    """Count until QUIT; report on every END."""
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    pull = ctx.socket(zmq.PULL)
    pull.setsockopt(zmq.RCVHWM, 1000)
    pull.setsockopt(zmq.LINGER, 0)
    pull.connect(data_endpoint)
    control = ctx.socket(zmq.DEALER)
    control.setsockopt(zmq.IDENTITY, symbol.encode())
    control.setsockopt(zmq.LINGER, 1000)
    control.connect(control_endpoint)
    control.send(_json_frame({"t": protocol.Kind.HELLO}))
    count = acked = last_ns = 0
    while True:
        batch = [pull.recv_multipart()]
        for _ in range(BATCH - 1):
            try:
                batch.append(pull.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                break
        received_ns = time.monotonic_ns()
        acks: list[list[object]] = []
        for frames in batch:
            if frames[0] in (END, QUIT):
                if acks:
                    control.send(_json_frame({"t": protocol.Kind.ACK, "d": acks}))
                    acks = []
                report = {"t": "count", "n": count, "acked": acked, "last_ns": last_ns}
                control.send(_json_frame(report))
                if frames[0] == QUIT:
                    ctx.destroy(linger=1000)
                    return
                count = acked = last_ns = 0
                continue
            count += 1
            last_ns = received_ns
            if len(frames) == 3 and frames[2][-1]:
                partition, offset, _, _ = _META.unpack(frames[2])
                acks.append([frames[0].decode(), partition, offset])
                acked += 1
        if acks:
            control.send(_json_frame({"t": protocol.Kind.ACK, "d": acks}))


if __name__ == "__main__":
    serve(*sys.argv[1:4])
