"""`run --canary` through the real CLI: paper mode, and live mode against the standalone simulators. One pair at
the venues' minimum size opens through the engine, closes after canary.hold_s, and its costs are reported."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
import requests

from actors.runtime import PAUSE_KEY
from core.domain import OrderPurpose, PairState, Side, Venue
from core.planning import VenueView
from exchanges.backpack.client import BackpackClient
from exchanges.base import OrderRequest
from live.costs import minimum_quantity
from storage.db import open_database_readonly
from storage.queries import Queries
from tests.helpers import clean_env, standalone_simulators, venue_sections, wait_until

ROOT = Path(__file__).resolve().parents[2]
FAST = """
[canary]
hold_s = 1
[monitor]
interval_s = 0.2
[timings]
tick_s = 0.05
shutdown_timeout_s = 5
leg_retry_min_s = 0.1
leg_retry_max_s = 0.2
[trading]
notional_usd = 100
[[trading.markets]]
name = "BTC"
backpack_symbol = "BTC_USDC_PERP"
hibachi_symbol = "BTC/USDT-P"
"""


@pytest.fixture
def standalone() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    with standalone_simulators(11) as venues:
        yield venues


def _live_config(directory: Path, bp: dict[str, Any], hb: dict[str, Any]) -> Path:
    path = directory / "canary.toml"
    path.write_text(f"""
mode = "live"
data_dir = "{directory / "data"}"
{FAST}
{venue_sections(bp, hb)}""")
    return path


def _canary_command(config: Path) -> list[str]:
    return [sys.executable, str(ROOT / "supervisor.py"), "--config", str(config), "run", "--canary"]


def _canary(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _canary_command(config), cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=120, check=False
    )


def _repo(data_dir: Path) -> tuple[Queries, Any]:
    db = open_database_readonly(f"sqlite:///{data_dir / 'perp-farmer.db'}")
    return Queries(db), db


def _venue_state(info: dict[str, Any]) -> dict[str, Any]:
    return requests.get(info["admin"], timeout=5).json()["accounts"]["paper"]


def _assert_one_minimum_pair_opened_and_closed(data_dir: Path) -> None:
    repo, db = _repo(data_dir)
    try:
        pairs = repo.list_pairs()
        assert [p.state for p in pairs] == [PairState.CLOSED], "exactly one pair, closed"
        pair = pairs[0]
        orders = repo.orders_for_pair(pair.id)
        assert sorted((o.venue.value, o.purpose.value, o.status) for o in orders) == [
            ("backpack", "close", "filled"), ("backpack", "open", "filled"),
            ("hibachi", "close", "filled"), ("hibachi", "open", "filled"),
        ]  # fmt: skip
        price = max(o.avg_price for o in orders if o.purpose is OrderPurpose.OPEN)  # type: ignore[type-var]
        # The simulators' BTC rules: Backpack step and minimum 0.00001; Hibachi step 1e-10 and 1 USD minimum.
        views = [
            VenueView(Venue.BACKPACK, "BTC_USDC_PERP", price, D("0.00001"), D("0.00001"), D(0), D(50), D(0)),
            VenueView(Venue.HIBACHI, "BTC/USDT-P", price, D("1E-10"), D("1E-10"), D(1), D(15), D(0)),
        ]
        assert pair.quantity == minimum_quantity(views), "the smallest size both venues accept, not notional_usd"
        assert pair.quantity * price < 5, "a canary, not a 100 USD pair"
        assert repo.get_meta(PAUSE_KEY) is None, "the canary's own pause is never stored"
    finally:
        db.dispose()


def test_canary_in_paper_mode(tmp_path: Path) -> None:
    config = tmp_path / "paper.toml"
    config.write_text(f'mode = "paper"\ndata_dir = "{tmp_path / "data"}"\n{FAST}')
    out = _canary(config)
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert out.stdout.startswith("canary: PASS")
    assert "both legs flat in the database: yes" in out.stdout
    assert "on the venues: flat" in out.stdout
    assert "all-taker estimate 475.00" in out.stdout
    _assert_one_minimum_pair_opened_and_closed(tmp_path / "data")


def test_canary_in_live_mode_against_the_standalone_simulators(
    standalone: tuple[dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    bp, hb = standalone
    out = _canary(_live_config(tmp_path, bp, hb))
    assert out.returncode == 0, out.stdout + out.stderr[-3000:]
    assert "pre-flight check passed" in out.stderr, "live mode checks before it trades"
    assert "cost per 1M of volume" in out.stdout
    _assert_one_minimum_pair_opened_and_closed(tmp_path / "data")
    for info in (bp, hb):
        state = _venue_state(info)
        assert state["positions"] == {}, "flat on the venue"
        assert len(state["orders"]) == 2, "one open and one close per venue, nothing more"


def test_canary_that_cannot_open_exits_1_flat(
    standalone: tuple[dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    bp, hb = standalone
    fault = {"kind": "reject", "code": 4, "message": "simulated refusal", "count": 1}
    assert requests.post(f"{hb['admin']}/fault", json=fault, timeout=5).ok
    out = _canary(_live_config(tmp_path, bp, hb))
    assert out.returncode == 1, out.stdout
    assert out.stdout.startswith("canary: FAIL")
    assert "did not open: pair 1 failed" in out.stdout
    assert "simulated refusal" in out.stdout
    for info in (bp, hb):
        assert _venue_state(info)["positions"] == {}, "the lone leg was rolled back"


def test_a_canary_whose_rollback_is_refused_repairs_the_naked_leg_before_it_exits(
    standalone: tuple[dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    bp, hb = standalone
    # Hibachi refuses the short's open; Backpack's long fills, and its rollback (three reduce-only tries) is
    # refused too: the pair is NAKED when the open returns.
    faults = [
        (hb, {"kind": "reject", "code": 4, "message": "simulated refusal", "count": 1}),
        (bp, {"kind": "reject", "code": "SERVICE_UNAVAILABLE", "message": "Busy", "count": 3, "reduce_only": True}),
    ]
    for info, fault in faults:
        assert requests.post(f"{info['admin']}/fault", json=fault, timeout=5).ok
    out = _canary(_live_config(tmp_path, bp, hb))
    assert out.returncode == 1, out.stdout + out.stderr[-3000:]
    assert out.stdout.startswith("canary: FAIL")
    assert "did not open: pair 1 naked" in out.stdout
    for info in (bp, hb):
        assert _venue_state(info)["positions"] == {}, "the naked long was repaired before the canary exited"
    assert "on the venues: flat" in out.stdout, out.stdout
    repo, db = _repo(tmp_path / "data")
    try:
        assert repo.get_pair(1).state is PairState.CLOSED
    finally:
        db.dispose()


def test_a_canary_flat_in_the_database_but_not_on_a_venue_fails_and_names_what_is_left(
    standalone: tuple[dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    bp, hb = standalone
    proc = subprocess.Popen(
        _canary_command(_live_config(tmp_path, bp, hb)), cwd=ROOT, env=clean_env(APP__CANARY__HOLD_S="10"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        wait_until(lambda: _venue_state(bp)["positions"] != {}, 60, "the canary's long on Backpack")
        # Someone else trades the same market on the same account during the hold: the database never hears of
        # it, so the canary's close leaves it, and only the venue can tell.
        client = BackpackClient(bp["rest"], bp["api_key"], bp["api_secret"])
        client.place_order(OrderRequest("4242", "BTC_USDC_PERP", Side.LONG, D("0.00001")))
        stdout, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 1, stdout + stderr[-3000:]
    assert stdout.startswith("canary: FAIL")
    assert "both legs flat in the database: yes" in stdout
    assert "LEFT OPEN: pair 1 (closed): backpack BTC_USDC_PERP +0.00001 still held on the venue" in stdout, stdout
