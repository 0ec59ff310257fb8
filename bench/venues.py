"""The two venue simulators as separate processes (as real venues are), and an runtime pointed at them."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from actors.runtime import Runtime
from core.config import Settings, load_settings
from core.domain import Venue

ROOT = Path(__file__).resolve().parents[1]
# The bench opens and closes back to back; the clients' own pacing (10 requests/s per venue, for real
# venues that publish no limit) would then be what is measured. The simulators do not rate-limit.
BENCH_REQUESTS_PER_S = 100000


@dataclass
class SimProcesses:
    """Both simulators, each in its own process, with their endpoints and keys."""

    procs: list[subprocess.Popen[str]]
    endpoints: dict[Venue, dict[str, Any]]
    session: requests.Session = field(default_factory=requests.Session)

    @classmethod
    def start(cls, *, seed: int = 7, collateral: int = 100_000_000) -> SimProcesses:
        """Spawn both simulators on free loopback ports and read their endpoints."""
        procs: list[subprocess.Popen[str]] = []
        endpoints: dict[Venue, dict[str, Any]] = {}
        for venue, module in ((Venue.BACKPACK, "exchanges.backpack.sim"), (Venue.HIBACHI, "exchanges.hibachi.sim")):
            proc = subprocess.Popen(
                [sys.executable, "-m", module, "--port", "0", "--seed", str(seed), "--collateral", str(collateral)],
                cwd=ROOT,
                env={k: v for k, v in os.environ.items() if not k.upper().startswith("APP__")},
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            procs.append(proc)
            line = proc.stdout.readline() if proc.stdout else ""
            if not line:
                for p in procs:
                    p.kill()
                raise RuntimeError(f"{module} did not start")
            endpoints[venue] = json.loads(line)
        return cls(procs, endpoints)

    @classmethod
    @contextmanager
    def running(cls, *, pin: bool = True) -> Iterator[SimProcesses]:
        """Both simulators for the length of a `with` block. With `pin` (and two cores or more) the simulators
        run on the last core and this process on the others: they stand in for remote venues, whose CPU must
        not be charged to the runtime. Unpinned on this 2-core machine, p99s doubled from run to run."""
        sims = cls.start()
        own = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set()
        pinned = pin and len(own) >= 2
        try:
            if pinned:
                venue_core = max(own)
                for proc in sims.procs:
                    os.sched_setaffinity(proc.pid, {venue_core})
                os.sched_setaffinity(0, own - {venue_core})
            yield sims
        finally:
            if pinned:
                os.sched_setaffinity(0, own)
            sims.stop()

    def fault(self, venue: Venue, spec: dict[str, Any]) -> dict[str, Any]:
        """Apply a fault through the simulator's admin endpoint."""
        reply = self.session.post(f"{self.endpoints[venue]['admin']}/fault", json=spec, timeout=10)
        reply.raise_for_status()
        return reply.json()

    def set_latency(self, seconds: float) -> None:
        """Delay every answer of both venues by `seconds` (real time)."""
        for venue in self.endpoints:
            self.fault(venue, {"kind": "latency", "seconds": seconds})

    def state(self, venue: Venue) -> dict[str, Any]:
        """The simulator's accounts, positions and orders."""
        reply = self.session.get(self.endpoints[venue]["admin"], timeout=10)
        reply.raise_for_status()
        return reply.json()

    def stop(self) -> None:
        """Terminate both processes."""
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


def live_settings(sims: SimProcesses, data_dir: Path, extra: dict[str, Any] | None = None) -> Settings:
    """Live-mode settings pointed at the simulator processes; the runtime loop and monitor only run on demand."""
    bp, hb = sims.endpoints[Venue.BACKPACK], sims.endpoints[Venue.HIBACHI]
    values: dict[str, Any] = {
        "mode": "live",
        "data_dir": str(data_dir),
        "trading": {"cooldown_min_s": 0, "cooldown_max_s": 0, "max_concurrent_pairs": 1},
        "monitor": {"interval_s": 3600},
        "timings": {"tick_s": 3600},
        # The bench opens hundreds of pairs an hour: the runaway guards would stop it.
        "limits": {
            "max_notional_usd": 1_000_000,
            "max_opens_per_hour": 1_000_000,
            "max_daily_cost_usd": 1_000_000,
            # 1,000 pairs move equity by more than the default 100 USD as simulated prices wander.
            "max_drawdown_usd": 1_000_000,
        },
        "backpack": {
            "api_key": bp["api_key"],
            "api_secret": bp["api_secret"],
            "rest_url": bp["rest"],
            "ws_url": bp["ws"],
            "account_ws_url": bp["ws"],  # the simulator serves the private streams on its one socket
            "requests_per_s": BENCH_REQUESTS_PER_S,
        },
        "hibachi": {
            "api_key": hb["api_key"],
            "account_id": hb["account_id"],
            "key_type": "hmac",
            "hmac_secret": hb["hmac_secret"],
            "api_url": hb["api"],
            "data_api_url": hb["data_api"],
            "ws_market_url": hb["ws_market"],
            "account_ws_url": hb["ws_account"],
            "requests_per_s": BENCH_REQUESTS_PER_S,
        },
    }
    for key, value in (extra or {}).items():
        values[key] = {**values.get(key, {}), **value} if isinstance(value, dict) else value
    return load_settings(None, values)


def start_engine(settings: Settings, seed: int = 11) -> Runtime:
    """An runtime with every actor up and start-up reconciliation done (nothing opens by itself: no main loop)."""
    runtime = Runtime(settings, rng=random.Random(seed)).start()
    for _ in range(100):
        if runtime.reconcile():
            return runtime
    runtime.shutdown()
    raise RuntimeError("start-up reconciliation did not finish")


def scratch_dir() -> Path:
    """A short directory under /tmp (ipc socket paths are limited to about 107 bytes)."""
    return Path(tempfile.mkdtemp(prefix="pf-bench-", dir="/tmp"))
