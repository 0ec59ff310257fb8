"""`python -m bench [--quick]`: start the venue simulators (separate processes, artificial latency) and
print one table of latency, throughput and footprint figures. Loopback figures against simulators: they
measure the engine, not the internet. Never run by the test suite."""

from __future__ import annotations

import argparse
import logging
import platform
import sys
import time
from datetime import UTC, datetime

from bench import feed, fleet, footprint, hedges, monitor, opens, signing
from bench.report import Figure, cores, render, render_json
from bench.venues import SimProcesses, scratch_dir

SECTIONS = ("opens", "feed", "monitor", "footprint", "signing", "hedges", "fleet")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer samples: the whole run in under a minute")
    parser.add_argument("--latency-ms", type=float, default=20.0, help="simulated venue latency per request")
    parser.add_argument("--opens", type=int, help="opens each way (default 200, quick 20)")
    parser.add_argument("--hedges", type=int, help="maker fills hedged (default 200, quick 100)")
    parser.add_argument("--accounts", type=int, help="fleet: paper accounts, one worker each (default 50, quick 10)")
    parser.add_argument("--fleet-s", type=float, help="fleet: seconds of trading once all answer (default 120)")
    parser.add_argument("--no-pin", action="store_true", help="do not give the simulators a core of their own")
    parser.add_argument("--only", choices=SECTIONS, action="append", help="run only these sections (repeatable)")
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object, not a table")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the sections and print the table."""
    args = _parser().parse_args(argv)
    quick = args.quick
    n_opens = args.opens or (20 if quick else 200)
    chosen = args.only or list(SECTIONS)
    log_dir = scratch_dir()
    # Engine events (pair opened, closed...) would bury the table: they go to a file.
    logging.basicConfig(filename=log_dir / "bench.log", level=logging.INFO, force=True)
    started = time.monotonic()
    figures: list[Figure] = []
    # Fresh simulators per section: each section starts from an empty database, so its client ids and
    # positions must not meet the previous section's on the venues.
    if "opens" in chosen:
        _progress(f"opens: {n_opens} each way, {args.latency_ms:g} ms venues")
        with SimProcesses.running(pin=not args.no_pin) as sims:
            figures += opens.run(sims, n_opens, 6 if quick else 40, args.latency_ms / 1000)
    if "feed" in chosen:
        _progress("feed: websocket flood")
        with SimProcesses.running(pin=not args.no_pin) as sims:
            figures += feed.run(sims, 2.0 if quick else 5.0, 2000)
    if "monitor" in chosen:
        _progress("monitor: 10, 100 and 1,000 open pairs; control socket")
        with SimProcesses.running(pin=not args.no_pin) as sims:
            figures += monitor.run(sims, (10, 100, 1000), 2 if quick else 5, 20 if quick else 200)
    if "footprint" in chosen:
        hours, speed = (0.3, 120.0) if quick else (1.0, 60.0)  # quick: the whole run stays under a minute
        _progress(f"footprint: {hours:g} simulated hour(s) at {speed:g}x")
        figures += footprint.run(hours, speed)
    if "signing" in chosen:
        figures += signing.run(0.3 if quick else 2.0)
    if "hedges" in chosen:
        n_hedges = args.hedges or (100 if quick else 200)
        _progress(f"hedges: {n_hedges} maker fills hedged, {args.latency_ms:g} ms venues")
        with SimProcesses.running(pin=not args.no_pin) as sims:
            figures += hedges.run(sims, n_hedges, args.latency_ms / 1000)
    if "fleet" in chosen:
        n_accounts = args.accounts or (10 if quick else 50)
        seconds = args.fleet_s or (30.0 if quick else 120.0)
        _progress(f"fleet: {n_accounts} paper accounts, {seconds:g} s of trading")
        figures += fleet.run(n_accounts, seconds)
    header = [
        f"perp-farmer benchmarks, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {'quick' if quick else 'full'} run "
        f"in {time.monotonic() - started:.0f} s",
        f"machine: {cores()} cores, {platform.machine()}, Python {platform.python_version()}, {platform.system()}",
        f"loopback figures against the project's venue simulators (separate processes"
        f"{'' if args.no_pin else ', on a core of their own'}), {args.latency_ms:g} ms added per venue request "
        f"where stated; engine log: {log_dir / 'bench.log'}",
    ]
    print(render_json(figures, header) if args.json else render(figures, header))
    return 0


def _progress(text: str) -> None:
    print(f"... {text}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
