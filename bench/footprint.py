"""Section 8a: peak RSS and CPU seconds of the whole product in paper mode over one simulated hour, run at
accelerated (fake) time in a child process of its own, so the figures are that process's alone.

Run as `python -m bench.footprint --hours 1 --speed 60`; prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import resource
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.report import Figure
from bench.venues import ROOT, scratch_dir


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child(hours: float, speed: float, data_dir: Path) -> dict[str, Any]:
    from actors.runtime import Runtime  # noqa: PLC0415 - imported here so start-up CPU is counted apart
    from core.clock import FakeClock  # noqa: PLC0415
    from core.config import load_settings  # noqa: PLC0415
    from core.domain import PairState  # noqa: PLC0415

    logging.basicConfig(filename=data_dir / "footprint.log", level=logging.INFO)
    settings = load_settings(
        None,
        {
            "data_dir": str(data_dir),
            "trading": {
                "min_duration_hours": "0.1",
                "max_duration_hours": "0.2",
                "cooldown_min_s": 60,
                "cooldown_max_s": 300,
                "max_concurrent_pairs": 3,
                "markets": [
                    {"name": a, "backpack_symbol": f"{a}_USDC_PERP", "hibachi_symbol": f"{a}/USDT-P"}
                    for a in ("BTC", "ETH", "SOL")
                ],
            },
            # The simulators publish on real time: at accelerated time their quotes look old sooner.
            "monitor": {"feed_stale_after_s": 600},
        },
    )
    clock = FakeClock(datetime(2026, 3, 1, tzinfo=UTC))
    started_cpu, started = _cpu_s(), time.monotonic()
    runtime = Runtime(settings, clock, rng=random.Random(3)).start()
    stop = threading.Event()
    loop = threading.Thread(target=runtime.run, args=(stop, 0.02), daemon=True)
    loop.start()
    target = hours * 3600
    step = 0.005
    simulated = 0.0
    while simulated < target:
        time.sleep(step)
        clock.advance(step * speed)
        simulated += step * speed
    stop.set()
    loop.join(10)
    pairs = runtime.repo.count_pairs_by_state()
    monitor_ticks = runtime.command("status", {}).get("monitor_ticks", 0)
    runtime.shutdown()
    return {
        "cpu_s": _cpu_s() - started_cpu,
        "cpu_s_total": _cpu_s(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "real_s": time.monotonic() - started,
        "simulated_s": simulated,
        "closed": pairs.get(PairState.CLOSED, 0),
        "pairs": sum(pairs.values()),
        "monitor_ticks": monitor_ticks,
    }


def run(hours: float, speed: float) -> list[Figure]:
    """Run the child and turn its report into figures."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.footprint", "--hours", str(hours), "--speed", str(speed)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
        check=True,
    )
    r = json.loads(out.stdout.strip().splitlines()[-1])
    what = f"{r['simulated_s'] / 3600:.2f} simulated h in {r['real_s']:.0f} s real"
    return [
        Figure.single(
            "8 footprint", "peak RSS (runtime + both simulators, one process)", r["peak_rss_mb"], "MiB", 1, what
        ),
        Figure.single(
            "8 footprint",
            "CPU seconds for the run (after imports)",
            r["cpu_s"],
            "s",
            1,
            f"{r['pairs']} pairs, {r['closed']} closed, {r['monitor_ticks']} monitor ticks",
        ),
        Figure.single(
            "8 footprint",
            "CPU per simulated hour",
            r["cpu_s"] / (r["simulated_s"] / 3600),
            "s/h",
            1,
            f"{100 * r['cpu_s'] / r['real_s']:.0f}% of one core while accelerated",
        ),
    ]


def main() -> int:
    """Child entry point."""
    parser = argparse.ArgumentParser(description="one accelerated paper run; prints its footprint as JSON")
    parser.add_argument("--hours", type=float, default=1.0, help="simulated hours")
    parser.add_argument("--speed", type=float, default=60.0, help="simulated seconds per real second")
    args = parser.parse_args()
    print(json.dumps(_child(args.hours, args.speed, scratch_dir())), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
