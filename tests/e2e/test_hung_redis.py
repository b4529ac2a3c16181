"""A Redis that accepts connections and never answers stalls no loop of the supervisor (D25).

Redis is a cache: the supervisor's heartbeat and the kill flag's fast copy are
written by a thread of their own, so a hung Redis (here a TCP listener that
accepts and never answers, with a long REDIS_SOCKET_TIMEOUT so that one call
costs many seconds) never delays the supervisor's answers on the control channel.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from mmsvc.domain.state import Command
from tests.e2e.conftest import ServiceFactory, add_config

pytestmark = [pytest.mark.e2e, pytest.mark.integration]

SYMBOL = "BTCUSDT"
SOCKET_TIMEOUT_S = 10
# Past the Redis store's longest pause (5 s) between calls, twice over: the heartbeat
# has tried the hung Redis several times meanwhile.
WATCH_S = 15.0
# An answer on the control channel, with a wide margin for a loaded box; well under
# the one Redis call (SOCKET_TIMEOUT_S) a stalled loop would wait out.
ANSWER_S = 4.0


@pytest.fixture
def blackhole() -> Iterator[int]:
    """A TCP port that accepts connections and never answers; its port."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield int(listener.getsockname()[1])
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    listener.close()


@pytest.mark.long  # make test-long: the beat thread is unit-tested (test_redis_beat.py)
def test_a_hung_redis_never_delays_the_supervisors_answers(
    service_factory: ServiceFactory, blackhole: int
) -> None:
    service = service_factory(
        REDIS_URL=f"redis://127.0.0.1:{blackhole}/0",
        REDIS_SOCKET_TIMEOUT=f"{SOCKET_TIMEOUT_S}s",
    )
    add_config(service.sessions, SYMBOL)
    service.start("supervisor")
    service.wait_ready([SYMBOL])

    ends = time.monotonic() + WATCH_S
    answered = 0
    while time.monotonic() < ends:
        status, body = service.command(Command.PING, timeout_s=ANSWER_S)
        assert status == 200, (answered, body)
        answered += 1
        time.sleep(0.2)  # deliberate: a steady stream of requests across the heartbeats
    assert service.procs["supervisor"].poll() is None
