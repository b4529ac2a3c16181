"""Fencing: two processes never quote one symbol (ARCHITECTURE D17, D26, D27, D32).

A worker owns its symbol through the lease of `mmsvc.adapters.db.leases` (a
row with a fencing epoch, no session state), taken at start, renewed about
every second and released at stop. A second worker for the same symbol waits
for a live lease and then gives up naming its holder (refused, never
crash-looped: D27). A fenced-out worker cancels only its own order ids, never
the account's (D32). A worker also asks the kernel to signal it when its
supervisor dies, so an orphan cancels its orders and exits (D17).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import signal
import time
from collections.abc import Callable, Iterable

from mmsvc.adapters.db.leases import Lease, LeaseHeld, LeaseKeeper
from mmsvc.adapters.order_service.client import OrderServiceClient

log = logging.getLogger("mmsvc.worker.fence")

_PR_SET_PDEATHSIG = 1
LEASE_RETRY_FIRST_S = 0.2
LEASE_RETRY_MAX_S = 2.0


def take_lease(
    keeper: LeaseKeeper,
    wait_s: float,
    *,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Lease:
    """Take the symbol's lease, retrying with backoff while another owner holds it.

    LeaseHeld (naming the holder) once `wait_s` has passed: the caller exits
    rather than crash-loops (D27).
    """
    deadline = clock() + wait_s
    delay = LEASE_RETRY_FIRST_S
    while True:
        try:
            return keeper.take()
        except LeaseHeld as held:
            if clock() + delay >= deadline:
                raise
            log.warning("lease held; waiting", extra={"symbol": keeper.symbol, "detail": str(held)})
        sleep(delay)
        delay = min(delay * 2, LEASE_RETRY_MAX_S)


def cancel_own(
    client: OrderServiceClient,
    symbol: str,
    client_order_ids: Iterable[str],
    order_ids: Iterable[str],
) -> int:
    """Cancel the venue's open orders that are ours by id, never the account's (D32).

    Ours: the order ids this worker learnt, and any open order of the symbol
    whose client_order_id this worker generated (a place answered too late for
    its order id to be known). Returns how many cancels were sent.
    """
    ours = set(client_order_ids)
    targets = set(order_ids)
    listed = client.list_open(symbol)
    if isinstance(listed, list):
        targets.update(o.order_id for o in listed if o.client_order_id in ours)
    for order_id in targets:
        client.cancel(order_id)
    return len(targets)


def die_with_parent(sig: signal.Signals = signal.SIGTERM) -> bool:
    """Ask Linux to send ``sig`` when the parent process dies; False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    return bool(libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0)
