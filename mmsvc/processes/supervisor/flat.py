"""The supervisor flattens a symbol whose worker cannot act: dead, or silent on a kill (D2, D7).

One routine for both: the worker that would cancel its own orders is gone or
does not answer, so the supervisor cancels them on its cancel pool (never on
its event loop: cancel-until-flat retries for up to CANCEL_DEADLINE_S).
"""

from __future__ import annotations

from concurrent.futures import Executor

from mmsvc.adapters.order_service.client import OrderServiceClient
from mmsvc.processes.global_kill import CANCEL_DEADLINE_S


def flatten_without_worker(
    cancels: Executor, orders: OrderServiceClient | None, symbol: str
) -> None:
    """Submit cancel-until-flat of ``symbol``'s orders; nothing without an Order Service client."""
    if orders is not None:
        cancels.submit(orders.cancel_until_flat, symbol, CANCEL_DEADLINE_S)
