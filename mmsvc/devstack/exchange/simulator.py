"""The whole simulator wired together: venue, Kafka sink, feed, HTTP and gRPC servers."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import grpc

from mmsvc.adapters.kafka import topics
from mmsvc.adapters.kafka.codec import AvroCodec
from mmsvc.devstack.exchange import metadata
from mmsvc.devstack.exchange.admin import AdminApp
from mmsvc.devstack.exchange.auth import AuthApp
from mmsvc.devstack.exchange.config import ExchangeConfig
from mmsvc.devstack.exchange.faults import Faults
from mmsvc.devstack.exchange.feed import FeedThread
from mmsvc.devstack.exchange.orders import OrderServiceApp
from mmsvc.devstack.exchange.publisher import KafkaSink
from mmsvc.devstack.exchange.venue import Venue
from mmsvc.devstack.exchange.web import HttpService

log = logging.getLogger(__name__)

# Every topic the simulator writes; their schemas are registered before it is ready.
PRODUCED = (
    topics.ORDERBOOK_SNAPSHOT,
    topics.ORDERBOOK_DELTA,
    topics.TRADES,
    topics.MARK,
    topics.ENGINE_EVENTS,
    topics.INSTRUMENT_CREATED,
    topics.INSTRUMENT_UPDATED,
    topics.INSTRUMENT_HALT,
    topics.INSTRUMENT_RESUME,
)


@dataclass(frozen=True, slots=True)
class Ports:
    """Where the simulator listens."""

    host: str
    http: int
    auth: int
    grpc: int
    admin: int


class Simulator:
    """Starts and stops every part of the exchange simulator."""

    def __init__(
        self,
        config: ExchangeConfig,
        brokers: str,
        registry_url: str,
        ports: Ports,
        seed: int | None = None,
    ) -> None:
        self.codec = AvroCodec(registry_url)
        self.sink = KafkaSink(brokers, self.codec)
        self.venue = Venue(config, self.sink, seed)
        self.feed = FeedThread(self.venue)
        self.ports = ports
        host = ports.host
        self.orders = HttpService(
            "order-service",
            host,
            ports.http,
            OrderServiceApp(self.venue, config.order_service_tokens),
        )
        self.auth = HttpService("auth", host, ports.auth, AuthApp(config.tokens))
        self.admin = HttpService(
            "admin", host, ports.admin, AdminApp(self.venue, self.apply_faults, self.is_ready)
        )
        self.grpc: grpc.Server | None = None
        self._ready = False

    def start(self) -> None:
        """Register the schemas, start the servers and the feed; ready after its first step."""
        for topic in PRODUCED:
            self.codec.register(topic)
        self.sink.start()
        self.grpc = metadata.serve(self.venue, self.ports.host, self.ports.grpc)
        for service in (self.orders, self.auth, self.admin):
            service.start()
        self.venue.advance(time.monotonic())  # the start-up snapshots
        self.feed.start()
        self._ready = True
        log.info(
            "exchange simulator ready: orders %s auth %s metadata %s:%d admin %s",
            self.orders.url,
            self.auth.url,
            self.ports.host,
            self.ports.grpc,
            self.admin.url,
        )

    def is_ready(self) -> bool:
        """Whether every interface is up and the first snapshots are queued."""
        return self._ready

    def apply_faults(self, faults: Faults) -> None:
        """Apply the knobs that live outside the venue: refusing Order Service connections."""
        if faults.refuse_connections:
            self.orders.stop()
        else:
            self.orders.start()

    def stop(self) -> None:
        """Stop the feed and the servers, then deliver what is queued for Kafka."""
        self._ready = False
        self.feed.stop()
        for service in (self.admin, self.auth, self.orders):
            service.stop()
        if self.grpc is not None:
            self.grpc.stop(grace=0.5).wait(2)
        self.feed.join(2)
        self.venue.close()
        self.sink.close()
        self.codec.close()
        log.info("exchange simulator stopped (%d messages delivered)", self.sink.produced)
