"""What every request of the admin process shares: settings, database, Redis, supervisor, auth."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka.admin import AdminClient
from flask import current_app
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from mmsvc.adapters import metrics
from mmsvc.adapters.auth import AuthDisabled, Authenticator, IntrospectionClient
from mmsvc.adapters.db.engine import make_engine, make_session_factory
from mmsvc.adapters.kafka.connection import connection_config
from mmsvc.adapters.order_service.client import OrderServiceClient
from mmsvc.adapters.status.redis_store import StatusStore
from mmsvc.adapters.zmq.control_client import ControlClient
from mmsvc.config import Settings
from mmsvc.processes.admin.readiness import ProbeCache

log = logging.getLogger(__name__)

EXTENSION = "mmsvc"
# The Order Service answers a cancel-all well inside this; a kill retries within its deadline.
ORDER_SERVICE_TIMEOUT_S = 1.0


@dataclass
class AdminContext:
    """The admin process's adapters, created once per process (after gunicorn's fork)."""

    settings: Settings
    engine: Engine
    sessions: sessionmaker[Session]
    status: StatusStore
    control: ControlClient
    auth: Authenticator
    probes: ProbeCache | None = None  # /readyz's background probes (health.start_probes)
    _orders: OrderServiceClient | None = None
    _kafka: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @contextmanager
    def transaction(self) -> Iterator[Session]:
        """A session in a transaction committed on success, rolled back on error."""
        with self.sessions.begin() as session:
            yield session

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for reads only."""
        with self.sessions() as session:
            yield session

    def orders(self) -> OrderServiceClient | None:
        """The Order Service client, or None in shadow mode (no call at all: D18)."""
        if self.settings.shadow_mode:
            return None
        with self._lock:
            if self._orders is None:
                self._orders = OrderServiceClient.from_settings(
                    self.settings, ORDER_SERVICE_TIMEOUT_S
                )
            return self._orders

    def kafka_admin(self) -> Any:
        """A Kafka admin client for the readiness probe's metadata call, created on first use."""
        with self._lock:
            if self._kafka is None:
                self._kafka = AdminClient(
                    {**connection_config(self.settings), "socket.timeout.ms": 2000}
                )
            return self._kafka

    def close(self) -> None:
        """Release every connection (the probes stop first: they use them)."""
        if self.probes is not None:
            self.probes.stop()
        self.control.close()
        self.status.close()
        if self._orders is not None:
            self._orders.close()
        self.engine.dispose()


def build(settings: Settings) -> AdminContext:
    """The context for `settings`; with DISABLE_AUTH every caller is ``anonymous``."""
    engine = make_engine(
        settings.postgres_url,
        application_name="mmsvc-admin",
        pool_size=4,
        statement_timeout_s=settings.postgres_statement_timeout_s,
    )
    metrics.set_auth_disabled(settings.disable_auth)
    if settings.disable_auth or settings.auth_service_url is None:
        # Settings allow it only on a loopback bind and without AUTH_SERVICE_URL (issue 14);
        # still an operator must not miss it.
        log.critical("DISABLE_AUTH=true: every caller is 'anonymous' with every role")
        auth: Authenticator = AuthDisabled()
    else:
        auth = IntrospectionClient(settings.auth_service_url)
    return AdminContext(
        settings=settings,
        engine=engine,
        sessions=make_session_factory(engine),
        status=StatusStore(
            settings.redis_url,
            settings.redis_prefix,
            process="admin",
            socket_timeout_s=settings.redis_socket_timeout_s,
        ),
        control=ControlClient(settings.control_endpoint, curve_dir=settings.control_curve_dir),
        auth=auth,
    )


def ctx() -> AdminContext:
    """The context of the app handling the current request."""
    context: AdminContext = current_app.extensions[EXTENSION]
    return context
