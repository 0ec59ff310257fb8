"""Which process sent which order, read from the paper host: two workers trade one account one after the other
(failover), the simulators log every order with its account and its sender's session tag, in the order they
took them, readable over HTTP (GET <sims url>/orders); a worker resuming after another is caught."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import requests

import exchanges.http
from core.domain import Side, Venue
from exchanges.paper_host import PaperHost, read_host_file, read_order_log
from exchanges.sim.order_log import interleavings
from exchanges.venue_parts import paper_account_name
from tests.helpers import ROOT, clean_env
from tests.system.test_paper_host import _buy_or_sell, _clients, _settings

ALICE, BOB = paper_account_name("alice"), paper_account_name("bob")
# A second worker process: it trades the account whose venue sections it is given, then prints its tag.
WORKER = """
import json, sys
from pathlib import Path
from core.domain import Side, Venue
from exchanges.http import session_tag
from tests.system.test_paper_host import _buy_or_sell, _clients
with _clients(Path(sys.argv[1]), json.loads(sys.argv[2])) as clients:
    _buy_or_sell(clients, Side.LONG, "0.01", int(sys.argv[3]))
print(session_tag())
"""


def _trade_as(
    monkeypatch: pytest.MonkeyPatch, tag: str, data_dir: Path, sections: dict[str, Any], *orders: int
) -> None:
    """Buy 0.01 BTC per order on each venue with clients made under session tag `tag` (another process's)."""
    with monkeypatch.context() as patch:
        patch.setattr(exchanges.http, "session_tag", lambda: tag)
        with _clients(data_dir, sections) as clients:
            for order in orders:
                _buy_or_sell(clients, Side.LONG, "0.01", order)


def _worker(data_dir: Path, sections: dict[str, Any], order: int) -> str:
    done = subprocess.run([sys.executable, "-c", WORKER, str(data_dir), json.dumps(sections), str(order)], cwd=ROOT,
                          env=clean_env(), capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def _merged(logs: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [entry for entries in logs.values() for entry in entries]


def test_two_workers_one_after_the_other_on_one_account_are_logged_in_order_with_their_tags(
    short_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = PaperHost.start(_settings(short_dir), short_dir, accounts=["alice", "bob"])
    try:
        accounts = host.venues.credentials()
        _trade_as(monkeypatch, "1111aaaa", short_dir, accounts["alice"], 11, 12)
        second = _worker(short_dir, accounts["alice"], 31)  # the failover: another process takes alice over
        assert second not in ("1111aaaa", exchanges.http.session_tag())
        _trade_as(monkeypatch, "2222bbbb", short_dir, accounts["bob"], 41)

        logs = read_order_log(short_dir)  # over HTTP, as a test process outside the host reads it
        assert logs == host.venues.order_log()
        assert sorted(logs) == ["backpack", "hibachi"]
        for venue, entries in logs.items():
            seen = [(e["seq"], e["account"], e["session"], e["refused"]) for e in entries]
            assert seen == [(1, ALICE, "1111aaaa", None), (2, ALICE, "1111aaaa", None), (3, ALICE, second, None),
                            (4, BOB, "2222bbbb", None)], venue  # fmt: skip
            assert all(e["order_id"] and e["side"] == "long" for e in entries)
            assert entries[0]["sender"] == "perp-farmer/0.1 (session 1111aaaa)"
            assert len({e["client_id"] for e in entries}) == 4  # each order's own client id
            orders = host.venues.sim(Venue(venue)).engine.accounts[ALICE].orders
            assert [e["order_id"] for e in entries[:3]] == list(orders)
        assert interleavings(_merged(logs)) == []
        assert _merged(read_order_log(short_dir, "bob")) == [e for e in _merged(logs) if e["account"] == BOB]

        sims = read_host_file(short_dir)["sims"]  # type: ignore[index]
        later = requests.get(f"{sims['hibachi']}/orders", params={"since": 3}, timeout=5).json()
        assert (later["venue"], later["next"], [e["seq"] for e in later["orders"]]) == ("hibachi", 4, [4])

        _trade_as(monkeypatch, "1111aaaa", short_dir, accounts["alice"], 13)  # the first worker was not stopped
        problems = interleavings(_merged(read_order_log(short_dir)))
        assert problems and all(p.startswith(f"{ALICE}: 'perp-farmer/0.1 (session 1111aaaa)'") for p in problems)
    finally:
        host.stop()
