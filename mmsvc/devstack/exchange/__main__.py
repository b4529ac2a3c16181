"""``python -m mmsvc.devstack.exchange``: run the exchange simulator until SIGTERM or SIGINT.

``--generated-instruments N`` (or ``EXCHANGE_GENERATED_INSTRUMENTS``) lists N
generated instruments beside the config's, each with a feed of
``--generated-msgs-per-s`` (``EXCHANGE_GENERATED_MSGS_PER_S``) messages a second
(config.py); a ``--config`` without ``[[instruments]]`` gives only generated ones.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from mmsvc.devstack.exchange.config import (
    ConfigError,
    ExchangeConfig,
    check_generated,
    load_config,
)
from mmsvc.devstack.exchange.pauses import GcPauses
from mmsvc.devstack.exchange.simulator import Ports, Simulator

log = logging.getLogger("mmsvc.devstack.exchange")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; ports default to the spec's defaults for the real services."""
    parser = argparse.ArgumentParser(prog="mmsvc-exchange", description=__doc__)
    parser.add_argument("--config", type=Path, help="TOML file (default: the demo defaults)")
    parser.add_argument("--kafka", required=True, help="bootstrap servers, host:port")
    parser.add_argument("--registry", required=True, help="Schema Registry base URL")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--http-port", type=int, default=3000, help="Order Service")
    parser.add_argument("--auth-port", type=int, default=3001, help="Auth Service")
    parser.add_argument("--grpc-port", type=int, default=50051, help="Metadata Service")
    parser.add_argument("--admin-port", type=int, default=3002, help="simulator admin")
    parser.add_argument("--snapshot-interval-s", type=float, help="override the config's")
    parser.add_argument("--seed", type=int, help="random seed for reproducible markets")
    parser.add_argument(
        "--generated-instruments",
        type=int,
        default=_env_number("EXCHANGE_GENERATED_INSTRUMENTS", int),
        help="list this many generated instruments (SIM0001USDT...) beside the config's",
    )
    parser.add_argument(
        "--generated-msgs-per-s",
        type=float,
        default=_env_number("EXCHANGE_GENERATED_MSGS_PER_S", float),
        help="feed messages a second of each generated instrument",
    )
    parser.add_argument("--generated-prefix", help="symbol prefix of generated instruments")
    parser.add_argument("--log-level", default="INFO")
    return parser.parse_args(argv)


def _env_number(name: str, kind: type[int] | type[float]) -> int | float | None:
    value = os.environ.get(name)
    if value is None or not value.strip():
        return None
    try:
        return kind(value)
    except ValueError:
        what = "an integer" if kind is int else "a number"
        raise SystemExit(f"mmsvc-exchange: {name}={value!r} is not {what}") from None


def apply_args(config: ExchangeConfig, args: argparse.Namespace) -> ExchangeConfig:
    """The config with the command line's overrides; ConfigError when they are invalid."""
    changes = {
        "snapshot_interval_s": args.snapshot_interval_s,
        "generated_instruments": args.generated_instruments,
        "generated_msgs_per_s": args.generated_msgs_per_s,
        "generated_prefix": args.generated_prefix,
    }
    config = config.with_overrides(**{k: v for k, v in changes.items() if v is not None})
    check_generated(
        config.generated_instruments, config.generated_prefix, config.generated_msgs_per_s
    )
    return config


def main(argv: Sequence[str] | None = None) -> int:
    """Start the simulator, wait for a stop signal, stop it cleanly."""
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s"
    )
    # The feed thread can hold the GIL for the default 5 ms switch interval, which
    # would show as Order Service latency; 1 ms keeps responses well under 5 ms.
    sys.setswitchinterval(0.001)
    try:
        config = apply_args(load_config(args.config), args)
    except ConfigError as exc:
        print(f"mmsvc-exchange: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    ports = Ports(args.host, args.http_port, args.auth_port, args.grpc_port, args.admin_port)
    simulator = Simulator(config, args.kafka, args.registry, ports, args.seed)
    stopping = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("signal %d: stopping", signum)
        stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    gc_pauses = GcPauses()
    try:
        simulator.start()
        gc_pauses.install()
        stopping.wait()
    finally:
        gc_pauses.close()
        simulator.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
