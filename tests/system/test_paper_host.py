"""The paper host: one simulator per venue serving several paper accounts, each reached by the real clients
from venue sections alone (as live), each seeing only its own positions and collateral; its keys and positions
survive a restart; SIGTERM stops it and removes its file; an engine with paper.external trades on it."""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from actors.runtime import Runtime
from core.clock import SystemClock
from core.config import Mode, Settings, load_settings
from core.domain import PairState, Side, Venue
from exchanges.base import OrderRequest, PerpExchange
from exchanges.hibachi.sim import HibachiSim
from exchanges.paper_host import HOST_FILE, HostBusyError, PaperHost, paper_account_names, read_host_file
from exchanges.registry import check_registered
from exchanges.venue_parts import paper_account_name
from tests.helpers import ROOT, clean_env, wait_until
from tests.system.conftest import FAST, Running, _merge

COLLATERAL = D(5000)
SEED = 7
BTC = {Venue.BACKPACK: "BTC_USDC_PERP", Venue.HIBACHI: "BTC/USDT-P"}
URL_FIELDS = {"rest_url", "ws_url", "account_ws_url", "api_url", "data_api_url", "ws_market_url"}
# Accounts in a config: [[accounts]] once core.config has it (helper A), else the one account, "default".
FLEET = hasattr(Settings, "account_names")


def _settings(data_dir: Path, **extra: Any) -> Settings:
    return load_settings(None, {"data_dir": str(data_dir), "paper": {"seed": SEED, "collateral_usd": str(COLLATERAL)}}
                         | extra)  # fmt: skip


@contextmanager
def _clients(data_dir: Path, sections: dict[str, dict[str, Any]]) -> Iterator[dict[Venue, PerpExchange]]:
    """Each venue's real client built as live (no simulator given) from the venue sections the host wrote."""
    settings = load_settings(None, {"data_dir": str(data_dir), **sections})
    clients: dict[Venue, PerpExchange] = {}
    try:
        for spec in check_registered(settings.trading.venues):
            symbols = [m.symbol(spec.venue) for m in settings.trading.markets]
            clients[spec.venue] = spec.connect(settings, SystemClock(), symbols, None)()[0]  # the feed stays idle
        yield clients
    finally:
        for client in clients.values():
            client.close()


def _positions(clients: dict[Venue, PerpExchange]) -> dict[Venue, list[tuple[str, Side, D]]]:
    return {v: [(p.symbol, p.side, p.quantity) for p in c.positions() if p.quantity] for v, c in clients.items()}


def _buy_or_sell(clients: dict[Venue, PerpExchange], side: Side, quantity: str, tag: int) -> None:
    ids = {Venue.BACKPACK: str(tag), Venue.HIBACHI: f"host-{tag}"}  # each venue's client id form
    for venue, client in clients.items():
        client.place_order(OrderRequest(ids[venue], BTC[venue], side, D(quantity)))


def _without_urls(accounts: dict[str, dict[str, dict[str, Any]]]) -> dict[str, dict[str, dict[str, Any]]]:
    """The keys alone: the URLs are on fresh ports after every start."""
    return {
        n: {v: {k: x for k, x in f.items() if k not in URL_FIELDS} for v, f in s.items()} for n, s in accounts.items()
    }


def _trade_two_accounts(data_dir: Path, accounts: dict[str, dict[str, dict[str, Any]]], a: str, b: str) -> None:
    """`a` buys 0.01 BTC and `b` sells 0.02 on each venue: each sees its own position and its own collateral."""
    with _clients(data_dir, accounts[a]) as first, _clients(data_dir, accounts[b]) as second:
        for clients in (first, second):
            assert _positions(clients) == {Venue.BACKPACK: [], Venue.HIBACHI: []}
            assert all(c.account().equity == COLLATERAL for c in clients.values())
        _buy_or_sell(first, Side.LONG, "0.01", 11)
        # b's account is untouched by a's fee and position.
        assert all(c.account().equity == COLLATERAL for c in second.values())
        assert all(c.account().equity != COLLATERAL for c in first.values())
        _buy_or_sell(second, Side.SHORT, "0.02", 12)
        # Were they one account, each would see a net short of 0.01.
        assert _positions(first) == {v: [(BTC[v], Side.LONG, D("0.01"))] for v in BTC}
        assert _positions(second) == {v: [(BTC[v], Side.SHORT, D("0.02"))] for v in BTC}


def _check_host_file(data_dir: Path, pid: int) -> dict[str, dict[str, dict[str, Any]]]:
    path = data_dir / HOST_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # it holds every account's keys
    data = read_host_file(data_dir)
    assert data is not None
    assert data["pid"] == pid
    accounts: dict[str, dict[str, dict[str, Any]]] = data["accounts"]
    return accounts


def test_two_accounts_on_one_host_each_see_their_own_and_keep_keys_and_positions_across_a_restart(
    short_dir: Path,
) -> None:
    settings = _settings(short_dir)
    host = PaperHost.start(settings, short_dir, accounts=["alice", "bob"])
    try:
        accounts = _check_host_file(short_dir, os.getpid())
        assert sorted(accounts) == ["alice", "bob"]
        assert accounts == host.venues.credentials()
        assert accounts["alice"]["backpack"]["api_key"] != accounts["bob"]["backpack"]["api_key"]
        assert accounts["alice"]["hibachi"]["account_id"] != accounts["bob"]["hibachi"]["account_id"]
        # One simulator per venue serves both: the same URLs.
        assert accounts["alice"]["backpack"]["rest_url"] == accounts["bob"]["backpack"]["rest_url"]
        with pytest.raises(HostBusyError, match="already serves"):
            PaperHost.start(settings, short_dir, accounts=["alice"])  # a second host would clobber the state
        _trade_two_accounts(short_dir, accounts, "alice", "bob")
        # The simulator's own "paper" account is apart from them.
        assert not host.venues.backpack.engine.accounts["paper"].positions
    finally:
        host.stop()
    assert not (short_dir / HOST_FILE).exists()

    again = PaperHost.start(settings, short_dir, accounts=["alice", "bob"])
    try:
        after = _check_host_file(short_dir, os.getpid())
        assert _without_urls(after) == _without_urls(accounts)  # the same keys, from seed and name
        assert after["alice"]["backpack"]["rest_url"] != accounts["alice"]["backpack"]["rest_url"]
        for name, side, qty in (("alice", Side.LONG, "0.01"), ("bob", Side.SHORT, "0.02")):
            with _clients(short_dir, after[name]) as clients:
                assert _positions(clients) == {v: [(BTC[v], side, D(qty))] for v in BTC}
                assert all(c.account().equity != COLLATERAL for c in clients.values())  # fees paid stay paid
    finally:
        again.stop()


def test_an_account_added_later_gets_a_fresh_account_and_another_seed_other_keys(short_dir: Path) -> None:
    host = PaperHost.start(_settings(short_dir), short_dir, accounts=["alice"])
    host.stop()
    grown = PaperHost.start(_settings(short_dir), short_dir, accounts=["alice", "carol"])
    try:
        keys = _without_urls(grown.venues.credentials())
        assert keys["alice"] == _without_urls(host.venues.credentials())["alice"]
        assert grown.venues.hibachi.engine.accounts[paper_account_name("carol")].collateral == COLLATERAL
    finally:
        grown.stop()
    other = PaperHost.start(_settings(short_dir / "other", paper={"seed": SEED + 1}), short_dir / "other",
                            accounts=["alice"])  # fmt: skip
    try:
        mine, theirs = keys["alice"], _without_urls(other.venues.credentials())["alice"]
        assert mine["backpack"]["api_key"] != theirs["backpack"]["api_key"]
        assert mine["hibachi"]["hmac_secret"] != theirs["hibachi"]["hmac_secret"]
    finally:
        other.stop()


def _config(path: Path, names: list[str]) -> Path:
    lines = [f"[paper]\nseed = {SEED}\ncollateral_usd = {COLLATERAL}\n"]
    if FLEET:
        lines += [f'[[accounts]]\nname = "{n}"\n' for n in names]
    path.write_text("\n".join(lines))
    return path


def _spawn(config: Path, data_dir: Path, log: Path) -> subprocess.Popen[str]:
    with log.open("a") as err:
        return subprocess.Popen(
            [sys.executable, "-m", "exchanges.paper_host", "--config", str(config), "--data-dir", str(data_dir)],
            cwd=ROOT, env=clean_env(), stdout=subprocess.DEVNULL, stderr=err, text=True,
        )  # fmt: skip


def _stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(20)


def _served(proc: subprocess.Popen[str], data_dir: Path) -> dict[str, dict[str, dict[str, Any]]]:
    def up() -> bool:
        assert proc.poll() is None, "the paper host exited"
        return (data_dir / HOST_FILE).exists()

    wait_until(up, 30, "the paper host's file")
    return _check_host_file(data_dir, proc.pid)


def test_the_command_serves_the_configured_accounts_until_sigterm_and_a_restart_keeps_them(short_dir: Path) -> None:
    names = ["alice", "bob"] if FLEET else ["default"]
    config = _config(short_dir / "paper.toml", names)
    assert paper_account_names(load_settings(config)) == names
    data_dir, log = short_dir / "host", short_dir / "host.log"
    proc = _spawn(config, data_dir, log)
    try:
        accounts = _served(proc, data_dir)
        assert sorted(accounts) == names
        # Batch scheduling, every thread: a simulator woken by a request never preempts the engine that sent it.
        threads = [int(tid) for tid in os.listdir(f"/proc/{proc.pid}/task")]
        assert len(threads) > 1 and {os.sched_getscheduler(tid) for tid in threads} == {os.SCHED_BATCH}
        if FLEET:
            _trade_two_accounts(data_dir, accounts, "alice", "bob")
        else:
            with _clients(data_dir, accounts["default"]) as clients:
                _buy_or_sell(clients, Side.LONG, "0.01", 21)
    finally:
        code = _stop(proc)
    assert code == 0
    assert not (data_dir / HOST_FILE).exists()  # nobody may dial simulators that are gone

    proc = _spawn(config, data_dir, log)
    try:
        after = _served(proc, data_dir)
        assert _without_urls(after) == _without_urls(accounts)
        with _clients(data_dir, after[names[0]]) as clients:
            assert _positions(clients) == {v: [(BTC[v], Side.LONG, D("0.01"))] for v in BTC}
    finally:
        assert _stop(proc) == 0
    text = log.read_text()
    assert accounts[names[0]]["backpack"]["rest_url"] in text  # the URLs are logged...
    secrets = [f[k] for s in accounts.values() for f in s.values() for k in ("api_key", "api_secret", "hmac_secret")
               if k in f]  # fmt: skip
    assert secrets
    assert not [s for s in secrets if s in text]  # ...the keys never


def test_paper_account_names_take_the_one_account_in_paper_mode_and_none_in_live(short_dir: Path) -> None:
    assert paper_account_names(_settings(short_dir)) == ["default"]
    live = _settings(short_dir).model_copy(update={"mode": Mode.LIVE})  # live's credentials do not matter here
    assert paper_account_names(live) == []


def _external(settings: Settings) -> Settings:
    """`settings` with paper.external set (copied in: the field is core.config's once helper A's change is in)."""
    return settings.model_copy(update={"paper": settings.paper.model_copy(update={"external": True})})


def test_an_engine_with_paper_external_starts_no_simulator_and_trades_on_the_hosts_account(short_dir: Path) -> None:
    host = PaperHost.start(_settings(short_dir / "host"), short_dir / "host", accounts=["default"])
    try:
        sections = host.venues.credentials()["default"]
        settings = _external(load_settings(None, _merge(FAST, {"data_dir": str(short_dir / "engine"), **sections})))
        runtime = Runtime(settings).start()
        running = Running(runtime).go()
        try:
            assert runtime.paper is None
            running.wait_pair(PairState.OPEN, PairState.CLOSING, PairState.CLOSED, timeout_s=30, what="a pair opened")
            for venue in (Venue.BACKPACK, Venue.HIBACHI):
                engine = host.venues.sim(venue).engine
                assert engine.accounts[paper_account_name("default")].fills  # the host's account traded
                assert not engine.accounts["paper"].fills
        finally:
            running.halt()
            runtime.shutdown()
    finally:
        host.stop()


def test_two_hibachi_accounts_drawing_the_same_id_get_distinct_ones() -> None:
    sim = HibachiSim(seed=SEED)
    first = sim.add_account("x", COLLATERAL, random.Random(1))
    second = sim.add_account("y", COLLATERAL, random.Random(1))  # the same draws: the same id first
    assert first.account_id != second.account_id
    assert sim.account(second.account_id) is sim.engine.accounts["y"]


def test_the_simulators_publish_as_often_as_paper_publish_interval_s_says(short_dir: Path) -> None:
    settings = load_settings(None, {"data_dir": str(short_dir), "paper": {"publish_interval_s": "1.5"}})
    host = PaperHost.start(settings, short_dir, accounts=["default"])
    try:
        assert {v: pv.sim._publish_interval_s for v, pv in host.venues.venues.items()} == dict.fromkeys(
            host.venues.venues, 1.5
        )
    finally:
        host.stop()
