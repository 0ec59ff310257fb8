"""What the fleet system tests share: a fleet's config, its supervisor as a process, its status, its records per
account, and what the paper venues hold and were sent per account."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import requests

from core.domain import PairState
from exchanges.paper_host import read_host_file
from exchanges.sim.order_log import interleavings
from exchanges.venue_parts import paper_account_name
from storage.db import make_engine
from storage.queries import Queries
from storage.records import EventRecord, PairRecord
from tests.helpers import ROOT, clean_env, wait_until

# Pairs that stay open through a test (an hour), opened at once, one per account at a time; the fleet's
# heartbeats and leases on a short scale (a lease is taken over within seconds).
FLEET_TOML = """
data_dir = "{data_dir}"
{database}
[trading]
min_duration_hours = 1
max_duration_hours = 1
cooldown_min_s = 3600
cooldown_max_s = 3600
[monitor]
interval_s = 0.5
[timings]
tick_s = 0.1
[paper]
host_dir = "{host_dir}"
[workers]
heartbeat_interval_s = 0.3
heartbeat_timeout_s = 2
start_timeout_s = 60
lease_s = 6
restart_backoff_min_s = 0.2
restart_backoff_max_s = 1
{workers}
"""


def fleet_config(
    path: Path, data_dir: Path, host_dir: Path, accounts: list[str], *, database: str | None = None, workers: str = ""
) -> Path:
    """Write a fleet's config: `accounts` on paper, their paper host in `host_dir`."""
    text = FLEET_TOML.format(
        data_dir=data_dir,
        host_dir=host_dir,
        database=f'[database]\nurl = "{database}"' if database else "",
        workers=workers,
    )
    path.write_text(text + "".join(f'\n[[accounts]]\nname = "{name}"\n' for name in accounts))
    return path


def spawn(argv: list[str], log: Path, **env: str) -> subprocess.Popen[str]:
    """A process of this project (its own session, so a test can kill it with all its children), output to `log`."""
    with log.open("a") as out:
        return subprocess.Popen(
            [sys.executable, *argv], cwd=ROOT, env=clean_env(**env), stdout=out, stderr=out, text=True,
            start_new_session=True,
        )  # fmt: skip


def supervisor(config: Path, log: Path, **env: str) -> subprocess.Popen[str]:
    """`python supervisor.py --config C run`."""
    return spawn([str(ROOT / "supervisor.py"), "--config", str(config), "run"], log, **env)


def paper_host(config: Path, host_dir: Path, log: Path) -> subprocess.Popen[str]:
    """A paper host on its own (the venues every supervisor of a test trades on)."""
    proc = spawn(["-m", "exchanges.paper_host", "--config", str(config), "--data-dir", str(host_dir)], log)

    def up() -> bool:
        assert proc.poll() is None, f"the paper host exited: {log.read_text()[-2000:]}"
        found = read_host_file(host_dir)
        return found is not None and found["pid"] == proc.pid

    wait_until(up, 60, "the paper host")
    return proc


def kill_group(proc: subprocess.Popen[str]) -> None:
    """kill -9 a process and every process of its session (a supervisor and its workers)."""
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)


def stop(proc: subprocess.Popen[str], timeout_s: float = 60) -> int:
    """SIGTERM, and the exit status."""
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout_s)


def status(config: Path) -> dict[str, Any]:
    """`supervisor.py status --json` from another process."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "supervisor.py"), "--config", str(config), "status", "--json"],
        cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    data: dict[str, Any] = json.loads(out.stdout)
    return data


@contextmanager
def records(url: str, account: str | None) -> Iterator[Queries]:
    """The database's records of one account (None: every account)."""
    db = make_engine(url)
    try:
        yield Queries(db, account=account)
    finally:
        db.dispose()


def pairs(url: str, account: str | None, *states: PairState) -> list[PairRecord]:
    """An account's pairs in `states` (every state when none is given)."""
    with records(url, account) as repo:
        return repo.list_pairs(list(states) if states else None)


def events(url: str, account: str, kind: str) -> list[EventRecord]:
    """An account's events of one kind, newest first."""
    with records(url, account) as repo:
        return [e for e in repo.list_events(limit=2000) if e.kind == kind]


def venue_positions(host_dir: Path, account: str) -> dict[str, dict[str, Decimal]]:
    """What each paper venue holds for `account`: signed quantity by symbol."""
    found = read_host_file(host_dir)
    assert found is not None
    out: dict[str, dict[str, Decimal]] = {}
    for venue, admin in found["sims"].items():
        state = requests.get(f"{admin}/state", timeout=10).json()
        held = state["accounts"].get(paper_account_name(account), {}).get("positions", {})
        out[venue] = {symbol: Decimal(p["quantity"]) for symbol, p in held.items()}
    return out


def order_log(host_dir: Path) -> list[dict[str, Any]]:
    """Every order the paper venues were sent, all venues together."""
    found = read_host_file(host_dir)
    assert found is not None
    entries: list[dict[str, Any]] = []
    for admin in found["sims"].values():
        entries += requests.get(f"{admin}/orders", timeout=10).json()["orders"]
    return entries


def senders_interleaved(host_dir: Path) -> list[str]:
    """Accounts whose orders came from one process, then another, then the first again (two live workers)."""
    return interleavings(order_log(host_dir))
