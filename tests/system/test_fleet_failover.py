"""Two fleet supervisors ("hosts") share one database and one set of paper venues, four accounts between them.
kill -9 of one supervisor and all its workers: within lease_s plus a reconciliation every account trades again
on the survivor, and no venue ever saw orders for one account from two workers in turn (A, B, A).
On a real PostgreSQL server, and on SQLite (two supervisors of one machine sharing the file)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from core.domain import PairState
from storage.db import make_engine
from storage.leases import LeaseBook, LeaseRow
from tests import fleet_kit as kit
from tests.helpers import ROOT, clean_env, wait_until

ACCOUNTS = ["alice", "bob", "carol", "dave"]
LEASE_S = 6.0  # fleet_kit's workers.lease_s
RECONCILE_BUDGET_S = 30.0  # a worker's start (imports, database, venues) and its reconciliation, on a loaded CI


def _leases(url: str) -> list[LeaseRow]:
    db = make_engine(url)
    try:
        return LeaseBook(db).holders()
    except Exception:  # no schema yet: nobody holds anything
        return []
    finally:
        db.dispose()


def _held_by(url: str) -> dict[str, str]:
    """Account -> holder, for the leases in force."""
    return {r.account: r.holder for r in _leases(url) if not r.expired}


def _pids(holder: str) -> int:
    return int(holder.split(":")[1])


def _close_all(config: Path, account: str) -> None:
    subprocess.run(
        [sys.executable, str(ROOT / "supervisor.py"), "--config", str(config), "close-all", "--account", account],
        cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip


def test_a_dead_hosts_accounts_trade_again_on_the_survivor_and_never_on_two_workers(
    short_dir: Path, fleet_database: str
) -> None:
    database = fleet_database
    host_dir = short_dir / "venues"
    configs = {
        name: kit.fleet_config(short_dir / f"{name}.toml", short_dir / name, host_dir, ACCOUNTS, database=database)
        for name in ("a", "b")
    }
    venues = kit.paper_host(configs["a"], host_dir, short_dir / "venues.log")
    first = second = None
    try:
        first = kit.supervisor(configs["a"], short_dir / "a.log", APP__WORKERS__MAX_ACCOUNTS="2")
        wait_until(lambda: len(_held_by(database)) == 2, 90, "the first host's two leases")
        second = kit.supervisor(configs["b"], short_dir / "b.log")

        def all_trading() -> bool:
            assert first.poll() is None and second.poll() is None
            return len(_held_by(database)) == 4 and all(kit.pairs(database, n, PairState.OPEN) for n in ACCOUNTS)

        wait_until(all_trading, 120, "four accounts trading on two hosts")
        holders = _held_by(database)
        assert len(set(holders.values())) == 2  # shared: two on each host
        dead_holder = next(h for h in holders.values() if _pids(h) == first.pid)
        moved = sorted(a for a, h in holders.items() if h == dead_holder)
        assert len(moved) == 2
        opened = {n: [p.id for p in kit.pairs(database, n, PairState.OPEN)] for n in ACCOUNTS}
        shown = kit.status(configs["a"])
        assert {r["account"]: r["ours"] for r in shown["leases"]} == {a: a in moved for a in ACCOUNTS}
        workers = [a["process"]["pid"] for a in shown["accounts"].values()]

        killed_at = time.monotonic()
        kit.kill_group(first)  # the supervisor...
        for pid in workers:  # ...and its workers (each in a session of its own)
            os.kill(pid, signal.SIGKILL)

        def taken_over() -> bool:
            held = _held_by(database)
            return (
                len(held) == 4
                and len(set(held.values())) == 1
                and all(len(kit.events(database, n, "reconciled")) == 2 for n in moved)
            )

        wait_until(taken_over, LEASE_S + RECONCILE_BUDGET_S, "the survivor's take-over")
        took_s = time.monotonic() - killed_at
        print(f"take-over in {took_s:.1f}s (lease {LEASE_S}s)")  # shown with -s
        assert took_s > LEASE_S * 0.9  # not before the dead host's leases could have expired

        def trading(account: dict[str, Any]) -> bool:
            status = account["status"]
            return account["process"]["state"] == "running" and status is not None and status["trading"]["blocks"] == {}

        # Trading: running, reconciled, nothing blocks opening (as the heartbeats see it: a beat or so behind).
        wait_until(lambda: all(map(trading, kit.status(configs["b"])["accounts"].values())), 30, "all four trading")
        assert sorted(kit.status(configs["b"])["accounts"]) == ACCOUNTS
        for name in ACCOUNTS:  # their pairs adopted as they were
            assert [p.id for p in kit.pairs(database, name, PairState.OPEN)] == opened[name], name
        # The survivor's workers now send orders for the moved accounts: their pairs closed from its socket.
        for name in moved:
            _close_all(configs["b"], name)
            assert not kit.pairs(database, name, PairState.OPEN)
        assert not kit.pairs(database, None, PairState.NAKED)
        log = kit.order_log(host_dir)
        for name in moved:
            sessions = [e["session"] for e in log if e["account"].endswith(f":{name}") and e["session"]]
            assert len(set(sessions)) == 2, (name, sessions)  # the dead worker's opens, the survivor's closes
        assert kit.senders_interleaved(host_dir) == []
    finally:
        for proc in (second, first):
            if proc is not None and proc.poll() is None:
                kit.stop(proc)
        kit.stop(venues)
