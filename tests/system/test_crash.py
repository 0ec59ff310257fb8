"""kill -9 at each dangerous point, then restart: the venues (separate processes) keep their state, and the
restarted supervisor must reconcile to a hedged or flat book with no duplicate order on any venue."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
import requests

from core.clock import SystemClock
from core.domain import ACTIVE_STATES, PairState, Venue
from core.failpoints import ENV as FAILPOINTS_ENV
from core.ledger import leg_book
from storage.db import open_database
from storage.queries import Queries
from tests.helpers import clean_env, spawn_simulator, venue_sections, wait_until

ROOT = Path(__file__).resolve().parents[2]
SYMBOLS = {Venue.BACKPACK: "BTC_USDC_PERP", Venue.HIBACHI: "BTC/USDT-P"}
UNSETTLED = (PairState.PLANNED, PairState.OPENING, PairState.ROLLING_BACK, PairState.NAKED, PairState.CLOSING)


@pytest.fixture
def venues() -> Iterator[dict[Venue, dict[str, Any]]]:
    bp_proc, bp = spawn_simulator("exchanges.backpack.sim", 5)
    hb_proc, hb = spawn_simulator("exchanges.hibachi.sim", 5, "--nonce-window", "2")
    yield {Venue.BACKPACK: bp, Venue.HIBACHI: hb}
    for proc in (bp_proc, hb_proc):
        proc.terminate()
        proc.wait(10)


def _config(
    directory: Path, venues: dict[Venue, dict[str, Any]], duration_hours: str, execution: str = "taker"
) -> Path:
    bp, hb = venues[Venue.BACKPACK], venues[Venue.HIBACHI]
    path = directory / "crash.toml"
    path.write_text(f"""
mode = "live"
data_dir = "{directory / "data"}"
[trading]
min_duration_hours = {duration_hours}
max_duration_hours = {duration_hours}
cooldown_min_s = 3600
cooldown_max_s = 3600
notional_usd = 200
[trading.execution]
open = "{execution}"
close = "{execution}"
maker_venue = "hibachi"
max_unhedged_usd = 60
imbalance_usd = 30
maker_timeout_s = 60
poll_s = 0.2
[[trading.markets]]
name = "BTC"
backpack_symbol = "BTC_USDC_PERP"
hibachi_symbol = "BTC/USDT-P"
[monitor]
interval_s = 0.5
[timings]
tick_s = 0.1
{venue_sections(bp, hb, bp_extra="window_ms = 1000", hb_extra="nonce_window_s = 2")}""")
    return path


def _supervisor(config: Path, *failpoints: str, args: tuple[str, ...] = ()) -> subprocess.Popen[str]:
    env = clean_env(**({FAILPOINTS_ENV: ",".join(failpoints)} if failpoints else {}))
    return subprocess.Popen(
        [sys.executable, str(ROOT / "supervisor.py"), "--config", str(config), *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _status_json(config: Path) -> dict[str, Any]:
    """`supervisor.py status --json` from a second process."""
    out = subprocess.run(
        [sys.executable, str(ROOT / "supervisor.py"), "--config", str(config), "status", "--json"],
        cwd=ROOT,
        env=clean_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return json.loads(out.stdout)


def _repo(directory: Path) -> tuple[Queries, Any]:
    db = open_database(f"sqlite:///{directory / 'data' / 'perp-farmer.db'}", SystemClock())
    return Queries(db), db


def _venue_state(venues: dict[Venue, dict[str, Any]]) -> dict[Venue, dict[str, Any]]:
    return {v: requests.get(info["admin"], timeout=5).json()["accounts"]["paper"] for v, info in venues.items()}


def _check_invariants(directory: Path, venues: dict[Venue, dict[str, Any]]) -> list[Any]:
    repo, db = _repo(directory)
    try:
        state = _venue_state(venues)
        pairs = repo.list_pairs()
        expected = {v: D(0) for v in venues}
        for pair in repo.list_pairs(ACTIVE_STATES):
            for leg in repo.positions_for_pair(pair.id):
                expected[leg.venue] += leg.side.sign * leg_book(leg.side, repo.orders_for_position(leg.id)).held
        for venue, account in state.items():
            held = D(account["positions"].get(SYMBOLS[venue], {}).get("quantity", "0"))
            assert held == expected[venue], f"{venue}: venue holds {held}, the database {expected[venue]}"
            client_ids = [o["client_id"] for o in account["orders"]]
            assert None not in client_ids, f"{venue}: an order without a client id"
            assert len(client_ids) == len(set(client_ids)), f"{venue}: a client id was sent twice: {client_ids}"
            for client_id in client_ids:
                repo.get_order(venue, client_id)  # every venue order has its database row
            resting = [o["client_id"] for o in account["orders"] if o["status"] in ("new", "partially_filled")]
            assert not resting, f"{venue}: orders still rest after reconciliation: {resting}"
        for pair in pairs:
            if pair.state is PairState.OPEN:
                legs = {leg.side: leg for leg in repo.positions_for_pair(pair.id)}
                held = [leg_book(s, repo.orders_for_position(legs[s].id)).held for s in legs]
                assert held[0] == held[1] == pair.quantity, f"pair {pair.id} is not hedged: {held}"
        return pairs
    finally:
        db.dispose()


SCENARIOS = [
    ("open.recorded", "1", PairState.FAILED, "taker"),
    ("open.between_legs", "1", PairState.FAILED, "taker"),
    ("open.filled", "1", PairState.OPEN, "taker"),
    ("close.between_legs", "0.0004", PairState.CLOSED, "taker"),
    # Maker execution: killed while the first post-only order rests on the venue (the restart must cancel it
    # and unwind whatever it filled), and between a maker fill heard and its hedge (the maker leg holds a
    # quantity with no hedge: the restart cancels the order, then unwinds the lone leg).
    ("maker.resting", "1", PairState.FAILED, "maker_taker"),
    ("maker.before_hedge", "1", PairState.FAILED, "maker_taker"),
]


@pytest.mark.parametrize(("failpoint", "hours", "end", "execution"), SCENARIOS, ids=[s[0] for s in SCENARIOS])
def test_kill_at_a_dangerous_point_then_restart(
    failpoint: str, hours: str, end: PairState, execution: str, venues: dict[Venue, dict[str, Any]], short_dir: Path
) -> None:
    config = _config(short_dir, venues, hours, execution)
    doomed = _supervisor(config, failpoint)
    assert doomed.wait(60) == -signal.SIGKILL, doomed.stderr.read()  # type: ignore[union-attr]
    assert f"fail point {failpoint}" in doomed.stderr.read()  # type: ignore[union-attr]

    restarted = _supervisor(config)
    try:

        def settled() -> bool:
            repo, db = _repo(short_dir)
            try:
                # The restart's own reconciliation: the doomed run wrote one too, before it opened anything.
                done = [e for e in repo.list_events(limit=500) if e.kind == "reconciled"]
                return len(done) == 2 and not repo.list_pairs(UNSETTLED)
            finally:
                db.dispose()

        wait_until(settled, 40, f"reconciliation after {failpoint}")
        pairs = _check_invariants(short_dir, venues)
        assert [p.state for p in pairs] == [end]
        repo, db = _repo(short_dir)
        try:
            decisions = [e.message for e in repo.list_events(limit=500) if e.kind == "reconcile"]
        finally:
            db.dispose()
        assert decisions, "every reconciliation decision is an event"
        if failpoint.startswith("maker."):
            # The kill came where it was meant to: a post-only order rested on the maker venue, and (before the
            # hedge) it had filled; the restart ended it (cancelled, or it filled meanwhile) and unwound the fills.
            repo, db = _repo(short_dir)
            try:
                makers = [o for o in repo.orders_for_pair(pairs[0].id) if o.type == "limit"]
            finally:
                db.dispose()
            final = ("cancelled", "filled", "expired", "rejected")
            assert makers and all(o.venue is Venue.HIBACHI and o.status in final for o in makers), makers
            if failpoint == "maker.before_hedge":
                assert any(o.filled_quantity > 0 for o in makers), "the maker order had filled before the kill"
    finally:
        restarted.send_signal(signal.SIGTERM)
        assert restarted.wait(10) == 0, restarted.stderr.read()  # type: ignore[union-attr]


def test_an_unknown_position_on_a_venue_blocks_opening(venues: dict[Venue, dict[str, Any]], short_dir: Path) -> None:
    from core.domain import Side
    from exchanges.backpack.client import BackpackClient
    from exchanges.base import OrderRequest

    bp = venues[Venue.BACKPACK]
    client = BackpackClient(bp["rest"], bp["api_key"], bp["api_secret"])
    client.place_order(OrderRequest("77", "BTC_USDC_PERP", Side.LONG, D("0.002")))  # placed by hand, not by us
    config = _config(short_dir, venues, "1")
    # The pre-flight check would refuse to start (it is tested in test_preflight.py); this tests the engine's own
    # runtime block, so the check is skipped.
    proc = _supervisor(config, args=("run", "--skip-check"))
    try:

        def blocked() -> bool:
            repo, db = _repo(short_dir)
            try:
                return any(e.kind == "position_mismatch" for e in repo.list_events(limit=100))
            finally:
                db.dispose()

        wait_until(blocked, 30, "the unknown position reported")
        data = _status_json(config)
        assert any("opening is blocked" in reason for reason in data["trading"]["blocks"].values())
        repo, db = _repo(short_dir)
        try:
            assert repo.list_pairs() == []  # nothing opened while the unknown position exists
        finally:
            db.dispose()
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0


def test_paper_mode_survives_kill_9_with_its_positions(short_dir: Path) -> None:
    config = short_dir / "paper.toml"
    config.write_text(
        f'data_dir = "{short_dir / "data"}"\n[trading]\nmin_duration_hours = 1\nmax_duration_hours = 1\n'
        "[monitor]\ninterval_s = 0.5\n[timings]\ntick_s = 0.1\n"
    )

    def pairs(*states: PairState) -> list[Any]:
        repo, db = _repo(short_dir)
        try:
            return repo.list_pairs(list(states) if states else None)
        finally:
            db.dispose()

    first = _supervisor(config)
    try:
        wait_until(lambda: bool(pairs(PairState.OPEN)), 30, "an open pair")
    finally:
        first.kill()
        first.wait(10)
    (opened,) = pairs(PairState.OPEN)
    second = _supervisor(config)
    try:

        def reconciled_twice() -> bool:
            repo, db = _repo(short_dir)
            try:
                return sum(1 for e in repo.list_events(limit=500) if e.kind == "reconciled") == 2
            finally:
                db.dispose()

        wait_until(reconciled_twice, 30, "the second start's reconciliation")
        data = _status_json(config)
        assert data["pairs"]["open"] == 1 and data["trading"]["blocks"] == {}
        assert [p.id for p in pairs(PairState.OPEN)] == [opened.id]  # the same pair, still hedged
        repo, db = _repo(short_dir)
        try:
            kinds = [e.kind for e in repo.list_events(limit=500)]
        finally:
            db.dispose()
        assert "position_mismatch" not in kinds and "pair_naked" not in kinds
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(10) == 0
