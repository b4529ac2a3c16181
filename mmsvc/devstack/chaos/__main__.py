"""``make chaos`` (``python -m mmsvc.devstack.chaos --minutes 10``): run, check, report.

The data of the run goes to ``<run_dir>/chaos/<UTC stamp>/`` and its report
also to ``bench-results/chaos-<UTC stamp>.{json,txt}``; check it again later
with ``python -m mmsvc.devstack.chaos.check <data dir>`` (the database
``mmsvc_chaos`` stays until the next run). Exit 0 when the four checks pass.
"""

from __future__ import annotations

import argparse
import functools
import json
import random
import shutil
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from mmsvc.devstack import services, stack
from mmsvc.devstack.chaos import check, driver

REPO = Path(__file__).resolve().parents[3]


def main(argv: Sequence[str] | None = None) -> int:
    """Set up, disrupt for ``--minutes``, settle, check, tear down."""
    parser = argparse.ArgumentParser(prog="make chaos", description=__doc__)
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=None, help="the disruptions' random seed")
    parser.add_argument("--run-dir", type=Path, default=REPO / ".run")
    parser.add_argument(
        "--kinds",
        default=",".join(driver.KINDS),
        help=f"the disruptions to choose from, comma-separated (default: {','.join(driver.KINDS)})",
    )
    args = parser.parse_args(argv)
    kinds = tuple(k for k in args.kinds.split(",") if k)
    if not kinds or set(kinds) - set(driver.KINDS):
        parser.error(f"--kinds: choose among {', '.join(driver.KINDS)}")
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    data = args.run_dir.resolve() / "chaos" / stamp
    data.mkdir(parents=True, exist_ok=True)
    recorder = driver.Recorder(data)
    say = functools.partial(print, flush=True)  # make chaos > file: each line as it comes
    chaos = driver.Chaos(args.run_dir.resolve(), recorder, random.Random(seed), say, kinds)  # noqa: S311
    ok, left = False, -1
    try:
        chaos.setup()
        recorder.write(
            "meta.json",
            {
                "minutes": args.minutes,
                "seed": seed,
                "symbols": chaos.symbols,
                "account_id": driver.ACCOUNT_ID,
                "database_url": chaos.stack_env["POSTGRES_URL"],
                "exchange_admin_url": chaos.stack_env["EXCHANGE_ADMIN_URL"],
                "hosts": {h.name: h.api for h in chaos.hosts.values()},
                "started_ms": driver.now_ms(),
                "halted_on_purpose": [],
                "kinds": list(kinds),
            },
        )
        say(f"chaos: {len(chaos.symbols)} symbols quoting on 3 hosts; data in {data}")
        sampler = driver.Sampler(chaos.database(), recorder)
        sampler.start()
        chaos.loop(args.minutes)
        recorder.write(check.FINAL_STATES, chaos.settle())
        time.sleep(2 * driver.SAMPLE_S)
        sampler.stopping.set()
        sampler.join(5)
        ok = check.check(data, fills_grace_s=check.FILLS_GRACE_S, out=say)
    except (stack.StackError, services.ServiceUnavailableError, OSError, KeyError) as exc:
        print(f"make chaos: {exc}", file=sys.stderr)  # noqa: T201
    finally:
        left = chaos.teardown()
    say(f"chaos: our open orders at the venue after every host stopped: {left}")
    _publish(data, stamp, left)
    return 0 if ok and left == 0 else 1


def _publish(data: Path, stamp: str, left: int) -> None:
    """The report in bench-results/ too, with what the stop left at the venue."""
    report = data / "report.json"
    if not report.exists():
        return
    figures = json.loads(report.read_text())
    figures["run"]["open_orders_after_stop"] = left
    report.write_text(json.dumps(figures, indent=2, sort_keys=True))
    out = REPO / "bench-results"
    out.mkdir(exist_ok=True)
    shutil.copy(report, out / f"chaos-{stamp}.json")
    shutil.copy(data / "report.txt", out / f"chaos-{stamp}.txt")


if __name__ == "__main__":
    raise SystemExit(main())
