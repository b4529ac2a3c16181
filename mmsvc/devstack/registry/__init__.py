"""A small Confluent-compatible Schema Registry for the dev stack (Avro only).

Dev and tests only (ARCHITECTURE, "Components that exist only for development");
production points SCHEMA_REGISTRY_URL at Confluent Schema Registry, Karapace or
Apicurio. It serves the endpoints confluent-kafka's ``SchemaRegistryClient``
calls to register, look up and fetch schemas, with the registry's JSON error
bodies. Schemas live in PostgreSQL (schema ``schema_registry``) so ids survive a
restart. Ids are global: the same schema gets the same id under every subject.
Compatibility levels are stored but not enforced.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

import psycopg

from mmsvc.devstack.registry.compatibility import COMPATIBILITY_LEVELS
from mmsvc.devstack.registry.errors import RegistryError
from mmsvc.devstack.registry.server import RegistryServer, serve
from mmsvc.devstack.registry.store import SchemaStore

__all__ = [
    "COMPATIBILITY_LEVELS",
    "RegistryError",
    "RegistryServer",
    "SchemaStore",
    "main",
    "serve",
]

log = logging.getLogger("mmsvc.registry")


def main(argv: Sequence[str] | None = None) -> int:
    """``mmsvc-registry --port P --database-url URL [--host H]``."""
    parser = argparse.ArgumentParser(prog="mmsvc-registry", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        serve(args.host, args.port, args.database_url)
    except (psycopg.Error, OSError) as exc:
        log.error("schema registry cannot start: %s", exc)
        return 1
    return 0
