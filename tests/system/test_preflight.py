"""`supervisor.py check` and the live-mode pre-check of `run`, through the real CLI, against venue simulators on
loopback: standalone processes for the passing check and the refused run, in-process simulators where a test
needs to bend one (a skewed clock, little collateral, a position nobody recorded)."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
import requests
from nacl.signing import SigningKey

from core.clock import SystemClock
from core.domain import Side
from exchanges.backpack.client import BackpackClient
from exchanges.backpack.sim import BackpackSim
from exchanges.base import OrderRequest
from exchanges.hibachi.sim import HibachiSim
from tests.helpers import clean_env, standalone_simulators, venue_sections, wait_until

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def standalone() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Both simulators as separate processes (`python -m exchanges.<venue>.sim --port 0`)."""
    with standalone_simulators(7) as venues:
        yield venues


class SkewedClock(SystemClock):
    """The real clock, `offset_s` ahead on the wall (monotonic time is untouched, as on a host whose time is off)."""

    def __init__(self, offset_s: float) -> None:
        self.offset = timedelta(seconds=offset_s)

    def now(self) -> datetime:
        return super().now() + self.offset


@pytest.fixture
def in_process() -> Iterator[Any]:
    """Start both simulators in this process with the given clock and collateral; stopped afterwards."""
    started: list[Any] = []

    def start(clock: Any = None, collateral: D = D(10000)) -> tuple[BackpackSim, HibachiSim]:
        bp = BackpackSim(clock=clock, seed=7, collateral=collateral).start()
        started.append(bp)
        hb = HibachiSim(clock=clock, seed=7, collateral=collateral).start()
        started.append(hb)
        return bp, hb

    yield start
    for sim in started:
        sim.stop()


def _endpoints(bp: BackpackSim, hb: HibachiSim) -> tuple[dict[str, Any], dict[str, Any]]:
    return bp.endpoints(), hb.endpoints()


def _config(directory: Path, bp: dict[str, Any], hb: dict[str, Any], *, markets: str = "", **over: str) -> Path:
    markets = (
        markets or '[[trading.markets]]\nname = "BTC"\nbackpack_symbol = "BTC_USDC_PERP"\nhibachi_symbol = "BTC/USDT-P"'
    )
    path = directory / "live.toml"
    path.write_text(f"""
mode = "live"
data_dir = "{directory / "data"}"
[trading]
notional_usd = 100
{markets}
{venue_sections(bp, hb, **over)}""")
    return path


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "supervisor.py"), "--config", str(config), *args],
        cwd=ROOT, env=clean_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _check(config: Path) -> tuple[int, dict[str, dict[str, Any]]]:
    out = _cli(config, "check", "--json")
    report = json.loads(out.stdout)
    return out.returncode, {c["name"]: c for c in report["checks"]}


def _failed(checks: dict[str, dict[str, Any]]) -> set[str]:
    return {name for name, c in checks.items() if c["status"] == "fail"}


def _orders(info: dict[str, Any]) -> list[Any]:
    state = requests.get(info["admin"], timeout=5).json()
    return [o for account in state["accounts"].values() for o in account["orders"]]


def test_check_passes_against_both_standalone_simulators_and_changes_nothing(
    standalone: tuple[dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    bp, hb = standalone
    code, checks = _check(_config(tmp_path, bp, hb))
    assert code == 0, checks
    assert not _failed(checks)
    for name in ("credentials.backpack", "credentials.hibachi", "clock.backpack", "clock.hibachi", "market.BTC",
                 "collateral.backpack", "collateral.hibachi", "leverage.backpack", "leverage.hibachi", "fees",
                 "positions.backpack", "positions.hibachi", "orders.backpack", "orders.hibachi",
                 "maintenance.backpack", "maintenance.hibachi", "feed.backpack", "feed.hibachi"):  # fmt: skip
        assert checks[name]["status"] == "pass", checks[name]
    assert checks["fees"]["numbers"]["all_taker_cost_per_1m"] == "475.00"  # (0.0005 + 0.00045) / 2 x 1M
    assert D(checks["clock.backpack"]["numbers"]["margin_ms"]) > 0
    # Read-only: no order reached either venue, the leverage is the venue's default, no database was created.
    assert _orders(bp) == [] and _orders(hb) == []
    client = BackpackClient(bp["rest"], bp["api_key"], bp["api_secret"])
    assert client.leverage_limit() == D(10)
    assert not (tmp_path / "data" / "perp-farmer.db").exists()


def test_run_in_live_mode_with_a_failing_check_sends_nothing(
    standalone: tuple[dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    bp, hb = standalone
    doge = '[[trading.markets]]\nname = "DOGE"\nbackpack_symbol = "DOGE_USDC_PERP"\nhibachi_symbol = "DOGE/USDT-P"'
    btc = '[[trading.markets]]\nname = "BTC"\nbackpack_symbol = "BTC_USDC_PERP"\nhibachi_symbol = "BTC/USDT-P"'
    config = _config(tmp_path, bp, hb, markets=f"{btc}\n{doge}")
    out = _cli(config, "run")
    assert out.returncode == 1
    assert "pre-flight check market.DOGE failed" in out.stderr
    assert _orders(bp) == [] and _orders(hb) == []
    assert not (tmp_path / "data" / "perp-farmer.db").exists(), "refused before the engine opened its database"


def test_a_wrong_key_fails_the_credentials_check(in_process: Any, tmp_path: Path) -> None:
    bp, hb = _endpoints(*in_process())
    stranger = SigningKey.generate()  # a valid key pair the venue has never seen
    key, secret = (base64.b64encode(bytes(k)).decode() for k in (stranger.verify_key, stranger))
    config = _config(tmp_path, bp, hb, bp_key=key, bp_secret=secret, hb_key="WrongKey" + "x" * 24)
    code, checks = _check(config)
    assert code == 1
    assert {"credentials.backpack", "credentials.hibachi"} <= _failed(checks)
    assert "Unknown API key" in checks["credentials.backpack"]["message"]
    assert "Invalid API key" in checks["credentials.hibachi"]["message"]
    assert checks["clock.backpack"]["status"] == "pass"  # the venue's time needs no key
    assert checks["market.BTC"]["status"] == "pass"  # public reads still run


def test_a_key_that_is_not_the_secrets_public_key_fails_without_a_request(in_process: Any, tmp_path: Path) -> None:
    bp, hb = _endpoints(*in_process())
    config = _config(tmp_path, bp, hb, bp_secret=base64.b64encode(bytes(SigningKey.generate())).decode())
    code, checks = _check(config)
    assert code == 1
    assert "is not the public key" in checks["credentials.backpack"]["message"]


def test_a_clock_skewed_beyond_the_window_fails_the_clock_checks(in_process: Any, tmp_path: Path) -> None:
    # The venues' clocks run 20 s ahead of ours: beyond Backpack's 5 s window and Hibachi's 15 s nonce window.
    bp, hb = _endpoints(*in_process(clock=SkewedClock(20)))
    code, checks = _check(_config(tmp_path, bp, hb))
    assert code == 1
    assert {"clock.backpack", "clock.hibachi"} <= _failed(checks)
    assert abs(int(checks["clock.backpack"]["numbers"]["offset_ms"]) - 20000) < 1000
    assert checks["credentials.backpack"]["status"] == "pass", "signed reads use the measured offset"


def test_an_unknown_market_fails_its_market_check(in_process: Any, tmp_path: Path) -> None:
    bp, hb = _endpoints(*in_process())
    markets = '[[trading.markets]]\nname = "BTC"\nbackpack_symbol = "BTC_USDC_PERP"\nhibachi_symbol = "XBT/USDT-P"'
    code, checks = _check(_config(tmp_path, bp, hb, markets=markets))
    assert code == 1
    assert _failed(checks) == {"market.BTC"}
    assert "XBT/USDT-P is not listed" in checks["market.BTC"]["message"]


def test_too_little_collateral_fails_the_collateral_checks(in_process: Any, tmp_path: Path) -> None:
    bp, hb = _endpoints(*in_process(collateral=D(30)))  # 100 USD at 3x with the 1.25 buffer needs 41.67
    code, checks = _check(_config(tmp_path, bp, hb))
    assert code == 1
    assert _failed(checks) == {"collateral.backpack", "collateral.hibachi"}
    assert checks["collateral.backpack"]["numbers"]["available"] == "30.00"


def test_an_unknown_position_fails_the_positions_check(in_process: Any, tmp_path: Path) -> None:
    bsim, hsim = in_process()
    bp, hb = _endpoints(bsim, hsim)
    client = BackpackClient(bp["rest"], bp["api_key"], bp["api_secret"])
    client.place_order(OrderRequest("4242", "BTC_USDC_PERP", Side.LONG, D("0.001")))  # opened by hand, say
    code, checks = _check(_config(tmp_path, bp, hb))
    assert code == 1
    assert _failed(checks) == {"positions.backpack"}
    assert checks["positions.backpack"]["numbers"] == {"BTC_USDC_PERP_unknown": "0.001"}
    assert "unknown_positions = close" in checks["positions.backpack"]["message"]


def test_a_failing_check_with_live_pairs_starts_paused_rather_than_leave_them_unwatched(
    in_process: Any, short_dir: Path
) -> None:
    bsim, hsim = in_process()
    bp, hb = _endpoints(bsim, hsim)
    config = _config(short_dir, bp, hb)
    data = short_dir / "data"

    def supervisor() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, str(ROOT / "supervisor.py"), "--config", str(config)],
            cwd=ROOT, env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    def status() -> dict[str, Any]:
        out = _cli(config, "status", "--json")
        return json.loads(out.stdout) if out.returncode == 0 else {}

    first = supervisor()
    try:
        wait_until(lambda: status().get("pairs", {}).get("open") == 1, 40, "a pair open")
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(15) == 0  # the pair stays open
    hsim.status = "SCHEDULED_MAINTENANCE"
    second = supervisor()
    try:
        wait_until(lambda: status().get("trading", {}).get("mode") == "paused", 40, "a paused start")
        assert "pre-flight check failed (maintenance.hibachi)" in status()["trading"]["reason"]
        assert status()["pairs"]["open"] == 1  # still watched by the engine
    finally:
        second.send_signal(signal.SIGTERM)
        assert second.wait(15) == 0
    assert (data / "perp-farmer.db").exists()


def test_check_in_paper_mode_reads_the_simulators_the_engine_would_start_and_writes_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    config = tmp_path / "paper.toml"
    config.write_text(f'mode = "paper"\ndata_dir = "{data}"\n[paper]\ncollateral_usd = 30\n')
    code, checks = _check(config)
    assert code == 1
    # The configured paper collateral reaches the simulators the check starts: too little for 100 USD at 3x.
    assert _failed(checks) == {"collateral.backpack", "collateral.hibachi"}
    assert checks["credentials.backpack"]["status"] == "pass"
    assert list(data.iterdir()) == [], "no database and no paper state written"


def test_check_in_paper_mode_on_live_prices_reads_the_live_priced_simulators(in_process: Any, tmp_path: Path) -> None:
    live_bp, live_hb = in_process()  # posing as the real venues: only their public market data is read
    for sim in (live_bp, live_hb):
        sim.freeze("BTC")
        sim.prices.set_price("BTC", D(1_000_000))  # far from any random-walk price the paper venues start at
    data = tmp_path / "data"
    config = tmp_path / "paper.toml"
    config.write_text(f"""
mode = "paper"
data_dir = "{data}"
[trading]
notional_usd = 100
[[trading.markets]]
name = "BTC"
backpack_symbol = "BTC_USDC_PERP"
hibachi_symbol = "BTC/USDT-P"
[paper]
prices = "live"
live_backpack_rest_url = "{live_bp.rest_url}"
live_backpack_ws_url = "{live_bp.ws_url}"
live_hibachi_data_url = "{live_hb.data_api_url}"
live_hibachi_ws_url = "{live_hb.ws_market_url}"
""")
    code, checks = _check(config)
    assert checks["market.BTC"]["status"] == "pass", checks["market.BTC"]
    # 100 USD at the live 1,000,000: the market check sized it on the live price, not the simulators' own walk.
    assert D(checks["market.BTC"]["numbers"]["quantity"]) == D("0.0001"), checks["market.BTC"]
    assert code == 0, checks


def test_a_secret_a_venue_echoes_never_reaches_the_output_of_check_or_the_pre_check(
    in_process: Any, tmp_path: Path
) -> None:
    bsim, hsim = in_process()
    bp, hb = _endpoints(bsim, hsim)
    secret = hb["hmac_secret"]  # configured (hibachi.hmac_secret), so the scrubber knows it
    # The venue's status text, shown in the maintenance check and in its 503 errors, carries the secret, as a
    # venue echoing a request back in an error would.
    hsim.status = f"MAINTENANCE({secret})"
    config = _config(tmp_path, bp, hb)
    outputs = [_cli(config, "check"), _cli(config, "check", "--json"), _cli(config, "run")]
    for out in outputs:
        assert out.returncode == 1, out.stdout + out.stderr
        assert secret not in out.stdout and secret not in out.stderr
    text, as_json, run = outputs
    assert "reports MAINTENANCE(**********)" in text.stdout, "the line is there, the secret is not"
    checks = {c["name"]: c for c in json.loads(as_json.stdout)["checks"]}
    assert checks["maintenance.hibachi"]["status"] == "fail"
    assert "**********" in checks["maintenance.hibachi"]["message"]
    assert "pre-flight check maintenance.hibachi failed" in run.stderr
