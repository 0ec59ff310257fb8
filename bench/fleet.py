"""Section 10: a fleet of paper accounts in one `supervisor.py run`, one worker process each, every account
opening and closing pairs: the leg skew of every open (from the records), the time to start them all, the
fleet `status` round trip, and the memory of the supervisor, each worker and the paper host."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.report import BenchError, Figure, cores
from bench.venues import ROOT, scratch_dir
from control.client import call
from core.domain import PairState
from storage.db import make_engine
from storage.queries import Queries

# Pairs of about 20 s with a few seconds between them: every account opens and closes all through the run. The
# monitor ticks at its default (60 s), as a farmer runs it.
CONFIG = """
data_dir = "{data_dir}"
[trading]
min_duration_hours = 0.005
max_duration_hours = 0.006
cooldown_min_s = 2
cooldown_max_s = 5
[paper]
# One paper host serves every account's feeds: at 20 frames a second per symbol and connection, 50 accounts' feeds
# alone would take the machine's two cores (the venues are remote in a real fleet).
publish_interval_s = 1
[limits]
# Pairs of 20 s open about 150 an hour per account: the farmer's default limit (12) would trip the kill switch
# after five minutes of a longer run (--fleet-s).
max_opens_per_hour = 1000
[workers]
heartbeat_interval_s = 2
heartbeat_timeout_s = 20
start_timeout_s = 600
lease_s = 60
"""
PAGE_KIB = 1024


def _config(directory: Path, accounts: int) -> Path:
    path = directory / "fleet.toml"
    names = "".join(f'\n[[accounts]]\nname = "acct{i:02d}"\n' for i in range(accounts))
    path.write_text(CONFIG.format(data_dir=directory / "data") + names)
    return path


def rss_mib(pid: int) -> float:
    """Resident memory of one process, MiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / PAGE_KIB
    raise BenchError(f"no VmRSS for pid {pid}")


def cpu_s(pid: int) -> float:
    """CPU seconds (user + system) one process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _status(address: str) -> dict[str, Any]:
    reply = call(address, "status", timeout_s=120)
    if not reply.get("ok"):
        raise BenchError(f"fleet status failed: {reply}")
    data: dict[str, Any] = reply["data"]
    return data


def _leg_skews_us(url: str, window: tuple[datetime, datetime]) -> tuple[list[float], int, int]:
    """The leg skew (µs) of every open that concluded in `window` (the fleet trading, after every worker started
    and before the stop), from its OPEN transition's event; how many opens fell outside; how many pairs closed."""
    db = make_engine(url)
    try:
        repo = Queries(db, account=None)
        opens = [
            e
            for e in repo.list_events(limit=1_000_000)
            if isinstance(e.data, dict) and e.data.get("leg_skew_us") is not None
        ]
        skews = [float(e.data["leg_skew_us"]) for e in opens if window[0] <= e.ts <= window[1]]
        closed = len(repo.list_pairs([PairState.CLOSED]))
    finally:
        db.dispose()
    return skews, len(opens) - len(skews), closed


def run(accounts: int, seconds: float, status_calls: int = 50) -> list[Figure]:
    """Run `accounts` workers for `seconds` once all answer; the figures of section 10."""
    directory = scratch_dir()
    config = _config(directory, accounts)
    data_dir = directory / "data"
    log = (directory / "fleet.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "supervisor.py"), "--config", str(config), "run"],
        cwd=ROOT, stdout=log, stderr=log, start_new_session=True,
    )  # fmt: skip
    address = f"ipc://{data_dir}/control.ipc"
    started = time.monotonic()
    try:
        while True:
            if proc.poll() is not None:
                raise BenchError(f"the fleet supervisor exited ({proc.returncode}); see {directory / 'fleet.log'}")
            if Path(address.removeprefix("ipc://")).exists():
                states = [a["process"]["state"] for a in _status(address)["accounts"].values()]
                if len(states) == accounts and all(s == "running" for s in states):
                    break
            if time.monotonic() - started > 900:
                raise BenchError(f"the fleet did not start within 900 s; see {directory / 'fleet.log'}")
            time.sleep(1)
        start_s = time.monotonic() - started
        running = _status(address)["accounts"].values()
        host = json.loads((data_dir / "paper-host.json").read_text())["pid"]
        watched = {"supervisor": [proc.pid], "workers": [a["process"]["pid"] for a in running], "host": [host]}
        cpu_before = {k: sum(map(cpu_s, pids)) for k, pids in watched.items()}
        window_from = datetime.now(UTC)
        time.sleep(seconds)
        window = (window_from, datetime.now(UTC))
        busy = {k: (sum(map(cpu_s, pids)) - cpu_before[k]) / seconds * 100 for k, pids in watched.items()}
        data = _status(address)
        round_trips = []
        for _ in range(status_calls):
            began = time.perf_counter()
            _status(address)
            round_trips.append((time.perf_counter() - began) * 1000)
        workers = [a["process"]["pid"] for a in data["accounts"].values()]
        supervisor_mib, host_mib = rss_mib(proc.pid), rss_mib(host)
        worker_mib = [rss_mib(pid) for pid in workers]
        restarts = sum(a["process"]["restarts"] for a in data["accounts"].values())
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(300)
        log.close()
    if code != 0:
        raise BenchError(f"the fleet supervisor stopped with status {code}; see {directory / 'fleet.log'}")
    skews, outside, closed = _leg_skews_us(f"sqlite:///{data_dir / 'perp-farmer.db'}", window)
    if not skews:
        raise BenchError("no pair opened in the fleet run")
    section, who = "10 fleet", f"{accounts} paper accounts, one worker process each"
    return [
        Figure.single("10 fleet", "start: every worker answering", start_s, "s", accounts, who),
        Figure.spread(
            section,
            "leg skew per open while trading (records)",
            skews,
            "µs",
            f"{len(skews)} opens in {seconds:.0f} s of trading ({outside} more during start and stop), {closed}"
            f" closed; {restarts} worker restarts; {sum(s > 1000 for s in skews)} over 1 ms, the largest"
            f" {max(skews):,.0f} µs",
        ),
        Figure.spread(
            section,
            f"fleet `status` round trip, {accounts} accounts",
            round_trips,
            "ms",
            "from the statuses the heartbeats took (a stale one is asked)",
        ),
        Figure.single(
            section,
            "CPU while trading: every worker together",
            busy["workers"],
            "% of a core",
            note=f"{busy['workers'] / accounts:.1f}% per worker; {cores()} cores",
        ),
        Figure.single(section, "CPU while trading: paper host (both venues)", busy["host"], "% of a core"),
        Figure.single(section, "CPU while trading: fleet supervisor", busy["supervisor"], "% of a core"),
        Figure.single(section, "RSS: fleet supervisor", supervisor_mib, "MiB"),
        Figure.spread(section, "RSS: one worker (per account)", worker_mib, "MiB", f"{accounts} workers"),
        Figure.single(section, "RSS: paper host (both venues' simulators)", host_mib, "MiB"),
        Figure.single(
            section,
            "RSS: the whole fleet",
            supervisor_mib + host_mib + sum(worker_mib),
            "MiB",
            note=f"{(supervisor_mib + sum(worker_mib)) / accounts:.1f} MiB per account",
        ),
    ]
