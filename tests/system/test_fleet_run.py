"""Three paper accounts in one `supervisor.py run`: one worker process each, every account trading its own pairs
on its own venue accounts; kill -9 of one worker leaves the others alone and the restarted one reconciles; a hung
worker is killed after its heartbeat timeout and replaced.
On SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import contextlib
import os
import signal
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.domain import PairState, Side
from storage.db import make_engine
from storage.queries import Queries
from tests import fleet_kit as kit
from tests.helpers import wait_until

ACCOUNTS = ["alice", "bob", "carol"]


def _expected_positions(url: str, account: str) -> dict[str, dict[str, Decimal]]:
    """What the venues must hold for `account`: the signed legs of its open pairs, by venue and symbol."""
    out: dict[str, dict[str, Decimal]] = {}
    db = make_engine(url)
    try:
        repo = Queries(db, account=account)
        for pair in repo.list_pairs([PairState.OPEN]):
            for leg in repo.positions_for_pair(pair.id):
                signed = leg.quantity if leg.side is Side.LONG else -leg.quantity
                held = out.setdefault(leg.venue.value, {})
                held[leg.symbol] = held.get(leg.symbol, Decimal(0)) + signed
    finally:
        db.dispose()
    return out


def _scheduling_classes(pid: int) -> set[int]:
    """The scheduling classes of the process's threads (one that ends while they are read is left out)."""
    classes = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        with contextlib.suppress(ProcessLookupError):
            classes.add(os.sched_getscheduler(int(tid)))
    return classes


def _workers(config: Path) -> dict[str, dict[str, Any]]:
    return {name: a["process"] for name, a in kit.status(config)["accounts"].items()}


def test_three_accounts_trade_apart_and_a_killed_worker_alone_restarts_and_reconciles(
    short_dir: Path, fleet_database: str
) -> None:
    database = fleet_database
    data_dir = short_dir / "data"
    config = kit.fleet_config(short_dir / "fleet.toml", data_dir, data_dir, ACCOUNTS, database=database)
    proc = kit.supervisor(config, short_dir / "fleet.log")
    try:

        def all_open() -> bool:
            assert proc.poll() is None, (short_dir / "fleet.log").read_text()[-3000:]
            if not (data_dir / "control.ipc").exists():  # served once the schema is made: only then read it
                return False
            return all(kit.pairs(database, name, PairState.OPEN) for name in ACCOUNTS)

        wait_until(all_open, 90, "an open pair in every account")
        opened = {name: [p.id for p in kit.pairs(database, name)] for name in ACCOUNTS}
        assert len({i for ids in opened.values() for i in ids}) == sum(map(len, opened.values()))  # no pair shared
        # Each account trades its own venue accounts: what each holds is its own pairs' legs, nothing else's.
        for name in ACCOUNTS:
            expected = _expected_positions(database, name)
            assert expected and kit.venue_positions(data_dir, name) == expected, name

        def shown() -> bool:  # status is as the heartbeats last saw each worker: a beat or so behind the records
            accounts = kit.status(config)["accounts"].values()
            return all(a["process"]["state"] == "running" and a["status"]["pairs"]["open"] == 1 for a in accounts)

        wait_until(shown, 30, "status showing each account's open pair")
        data = kit.status(config)
        assert sorted(data["accounts"]) == ACCOUNTS
        assert {r["account"]: r["ours"] and not r["expired"] for r in data["leases"]} == dict.fromkeys(ACCOUNTS, True)
        before = _workers(config)
        # Every worker thread on the batch class (workers.batch_scheduling): a worker woken by a price or a reply
        # never preempts another between the two writes of an open's legs. The supervisor stays normal.
        for name in ACCOUNTS:
            assert _scheduling_classes(before[name]["pid"]) == {os.SCHED_BATCH}, name
        assert _scheduling_classes(proc.pid) == {os.SCHED_OTHER}

        os.kill(before["bob"]["pid"], signal.SIGKILL)

        def bob_back() -> bool:
            now = _workers(config)
            return now["bob"]["state"] == "running" and now["bob"]["pid"] != before["bob"]["pid"]

        wait_until(bob_back, 60, "bob's worker restarted")
        wait_until(lambda: len(kit.events(database, "bob", "reconciled")) == 2, 60, "bob's second reconciliation")
        after = _workers(config)
        assert after["bob"]["restarts"] == 1, (short_dir / "fleet.log").read_text()[-4000:]
        for name in ("alice", "carol"):  # untouched: the same process, never restarted, reconciled once
            assert (after[name]["pid"], after[name]["restarts"]) == (before[name]["pid"], 0), name
            assert len(kit.events(database, name, "reconciled")) == 1, name
        for name in ACCOUNTS:  # every pair still open and hedged on its own account's venues
            assert [p.id for p in kit.pairs(database, name, PairState.OPEN)] == opened[name], name
            assert kit.venue_positions(data_dir, name) == _expected_positions(database, name), name
            kinds = {e.kind for e in kit.events(database, name, "position_mismatch")}
            assert not kinds, name
        assert not kit.pairs(database, None, PairState.NAKED)
        assert not kit.senders_interleaved(data_dir)  # bob's orders: the first worker's, then only the second's

        # A worker that hangs (stopped, alive, silent) is killed after heartbeat_timeout_s and restarted.
        os.kill(after["carol"]["pid"], signal.SIGSTOP)
        wait_until(lambda: _workers(config)["carol"]["restarts"] == 1, 60, "carol's hung worker replaced")
        wait_until(lambda: len(kit.events(database, "carol", "reconciled")) == 2, 60, "carol's reconciliation")
        assert [p.id for p in kit.pairs(database, "carol", PairState.OPEN)] == opened["carol"]
        assert _workers(config)["alice"]["pid"] == before["alice"]["pid"]
    finally:
        code = kit.stop(proc)
    assert code == 0
