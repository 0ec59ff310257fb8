"""The control socket over real nng, in front of a real engine; and the CLI as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal as D
from pathlib import Path

import pynng
import pytest
import requests

from actors.messages import OpenDeclined, OpenNow
from control.client import ControlUnavailableError, call
from control.protocol import MAX_REQUEST_BYTES
from control.server import ControlServer
from core.clock import SystemClock
from core.domain import PairState
from storage.db import open_database
from storage.queries import Queries
from tests.helpers import wait_until
from tests.system.conftest import Running

ROOT = Path(__file__).resolve().parents[2]
Factory = Callable[..., Running]


def _raw(address: str, payload: bytes) -> dict[str, object]:
    with pynng.Req0(send_timeout=5000, recv_timeout=5000) as sock:
        sock.dial(address, block=True)
        sock.send(payload)
        return json.loads(sock.recv())


@pytest.fixture
def served(engine_factory: Factory, short_dir: Path) -> tuple[Running, str]:
    run = engine_factory({"trading": {"min_duration_hours": "0.01", "max_duration_hours": "0.01"}})
    address = f"ipc://{short_dir}/c.ipc"
    server = ControlServer(address, run.runtime.command).start()
    yield run, address
    server.stop()


def test_every_command_over_the_socket(served: tuple[Running, str], short_dir: Path) -> None:
    run, address = served
    assert stat.S_IMODE(os.stat(short_dir / "c.ipc").st_mode) == 0o600
    pair = run.wait_pair(PairState.OPEN)
    status = call(address, "status")
    assert status["ok"] is True
    data = status["data"]
    assert data["mode"] == "paper" and data["pairs"]["open"] == 1
    assert set(data["actors"]) == {
        "writer",
        "exchange.backpack",
        "exchange.hibachi",
        "monitor",
        "closer",
        "coordinator",
    }
    assert call(address, "health")["data"]["healthy"] is True
    assert [p["id"] for p in call(address, "pairs", {"state": "open"})["data"]] == [pair.id]
    one = call(address, "pair", {"id": pair.id})["data"]
    assert {leg["side"] for leg in one["legs"]} == {"long", "short"}
    assert len(one["orders"]) == 2 and one["events"]
    assert call(address, "pause", {"reason": "maintenance window"})["data"] == {
        "trading": "paused", "reason": "maintenance window",
    }  # fmt: skip
    closed = call(address, "close", {"id": pair.id})["data"]
    assert closed == {"states": {str(pair.id): "closed"}}
    coordinator = run.runtime.supervisor.ref("coordinator")
    assert coordinator is not None
    declined = coordinator.ask(OpenNow(), timeout=30)  # what every tick asks too
    assert isinstance(declined, OpenDeclined) and "paused (maintenance window)" in declined.reason
    assert run.pairs(PairState.OPEN) == []
    assert call(address, "resume")["data"] == {"trading": "normal"}
    second = run.wait_pair(PairState.OPEN)
    assert call(address, "close-all")["data"] == {"states": {str(second.id): "closed"}}


def test_bad_requests_get_error_replies_and_the_server_keeps_serving(served: tuple[Running, str]) -> None:
    _run, address = served
    assert _raw(address, b"{not json")["error"]["code"] == "bad_json"  # type: ignore[index]
    assert _raw(address, b"[1, 2]")["error"]["code"] == "bad_json"  # type: ignore[index]
    assert _raw(address, b'{"cmd": "launch"}')["error"]["code"] == "unknown_command"  # type: ignore[index]
    assert _raw(address, b'{"cmd": 5}')["error"]["code"] == "bad_request"  # type: ignore[index]
    assert _raw(address, b'{"cmd": "pair", "args": {"id": "x"}}')["error"]["code"] == "bad_request"  # type: ignore[index]
    assert _raw(address, b'{"cmd": "pair", "args": {"id": 99999}}')["error"]["code"] == "not_found"  # type: ignore[index]
    assert _raw(address, b'{"cmd": "pairs", "args": {"state": "weird"}}')["error"]["code"] == "bad_request"  # type: ignore[index]
    huge = json.dumps({"cmd": "status", "pad": "x" * (MAX_REQUEST_BYTES + 1)}).encode()
    assert _raw(address, huge)["error"]["code"] == "too_large"  # type: ignore[index]
    assert _raw(address, b"")["error"]["code"] == "bad_json"  # type: ignore[index]
    assert _raw(address, b"[" * 30_000)["error"]["code"] == "bad_json"  # type: ignore[index]
    too_big = json.dumps({"cmd": "pair", "args": {"id": 2**63}}).encode()
    assert _raw(address, too_big)["error"]["code"] == "bad_request"  # type: ignore[index]
    long_reason = json.dumps({"cmd": "pause", "args": {"reason": "r" * 201}}).encode()
    assert _raw(address, long_reason)["error"]["code"] == "bad_request"  # type: ignore[index]
    assert call(address, "pair", {"id": str(2**63 - 1)})["error"]["code"] == "not_found"  # type: ignore[index]
    assert call(address, "health")["ok"] is True  # still serving


def test_a_token_is_required_when_configured(short_dir: Path) -> None:
    address = f"ipc://{short_dir}/t.ipc"
    server = ControlServer(address, lambda cmd, args: {"cmd": cmd}, token="s3cret").start()
    try:
        assert call(address, "status")["error"]["code"] == "unauthorized"  # type: ignore[index]
        assert call(address, "status", token="wrong")["error"]["code"] == "unauthorized"  # type: ignore[index]
        assert call(address, "status", token="s3cret")["data"] == {"cmd": "status"}
    finally:
        server.stop()


def test_client_reports_a_supervisor_that_is_not_running(short_dir: Path) -> None:
    with pytest.raises(ControlUnavailableError, match="not running"):
        call(f"ipc://{short_dir}/nobody.ipc", "status", timeout_s=1)


# ---- the command line, in separate processes --------------------------------------------------------------


def _cli(args: list[str], cwd: Path, **kw: object) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("APP__")}
    return subprocess.run([sys.executable, str(ROOT / "supervisor.py"), *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=False, **kw)  # type: ignore[call-overload]  # fmt: skip


def test_supervisor_runs_in_paper_mode_and_answers_a_second_process(short_dir: Path) -> None:
    config = short_dir / "fast.toml"
    config.write_text(
        'data_dir = "d"\n[trading]\nmin_duration_hours = 0.02\nmax_duration_hours = 0.02\n'
        "cooldown_min_s = 0\ncooldown_max_s = 0\n[monitor]\ninterval_s = 1\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("APP__")}
    proc = subprocess.Popen([sys.executable, str(ROOT / "supervisor.py"), "--config", str(config)], cwd=short_dir,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:

        def open_pair_shown() -> bool:
            out = _cli(["--config", str(config), "pairs", "--json", "--state", "open"], short_dir)
            return out.returncode == 0 and len(json.loads(out.stdout)) == 1

        wait_until(open_pair_shown, 30, "an open pair reported by a second process")
        status = _cli(["--config", str(config), "status"], short_dir)
        assert status.returncode == 0, status.stderr
        assert "mode paper" in status.stdout and "open 1" in status.stdout
        assert "exchange.hibachi" in status.stdout
        health = _cli(["--config", str(config), "health"], short_dir)
        assert (health.returncode, health.stdout.strip()) == (0, "healthy")
        again = subprocess.run([sys.executable, str(ROOT / "supervisor.py"), "--config", str(config)], cwd=short_dir,
                               env=env, capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert again.returncode == 1 and "already running" in again.stderr
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            code = proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
        stderr = proc.stderr.read()  # type: ignore[union-attr]
    assert code == 0, stderr
    assert "Traceback" not in stderr
    assert (short_dir / "d" / "perp-farmer.db").is_file()
    down = _cli(["--config", str(config), "status"], short_dir)
    assert down.returncode == 1 and "not running" in down.stderr
    assert _cli(["--config", str(config), "health"], short_dir).returncode == 1  # what a container health check sees


def test_close_on_exit_closes_open_pairs_before_exiting(short_dir: Path) -> None:
    config = short_dir / "fast.toml"
    config.write_text('data_dir = "d"\n[trading]\nmin_duration_hours = 1\nmax_duration_hours = 1\n')
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("APP__")}
    proc = subprocess.Popen([sys.executable, str(ROOT / "supervisor.py"), "run", "--close-on-exit", "--config",
                             str(config)], cwd=short_dir, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    try:
        wait_until(lambda: '"state": "open"' in _cli(["--config", str(config), "pairs", "--json"], short_dir).stdout,
                   30, "an open pair")  # fmt: skip
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(10)
    assert code == 0, proc.stderr.read()  # type: ignore[union-attr]
    db = open_database(f"sqlite:///{short_dir / 'd' / 'perp-farmer.db'}", SystemClock())
    try:
        pairs = Queries(db).list_pairs()
    finally:
        db.dispose()
    assert [(p.state, p.close_reason) for p in pairs] == [(PairState.CLOSED, "shutdown with --close-on-exit")]


def test_metrics_endpoint_is_scraped(engine_factory: Factory) -> None:
    run = engine_factory({"metrics": {"enabled": True, "port": 0}})
    run.wait_pair(PairState.OPEN)
    metrics = run.runtime.metrics
    assert metrics is not None and metrics.port
    wait_until(
        lambda: all(run.runtime.command("status", {})["collateral_ratio"].values() or [None]),
        10,
        "a monitor reading with the pair open",
    )
    run.runtime.refresh_metrics()
    text = requests.get(f"http://127.0.0.1:{metrics.port}/metrics", timeout=5).text
    lines = {line.split(" ")[0]: line.split(" ")[1] for line in text.splitlines() if line and not line.startswith("#")}
    assert lines['perp_farmer_pairs{state="open"}'] == "1.0"
    assert lines["perp_farmer_open_pairs"] == "1.0"
    assert float(lines['perp_farmer_equity_usd{venue="backpack"}']) > 9000
    assert 'perp_farmer_collateral_ratio{venue="hibachi"}' in lines
    assert float(lines['perp_farmer_orders_total{result="filled",venue="hibachi"}']) >= 1
    assert float(lines['perp_farmer_order_seconds_count{venue="backpack"}']) >= 1
    assert lines['perp_farmer_actor_restarts{actor="monitor"}'] == "0.0"
    assert 'perp_farmer_events{level="info"}' in lines
    assert any(k.startswith("perp_farmer_feed_age_seconds") for k in lines)


def test_report_per_pair_and_total_in_every_format(engine_factory: Factory, short_dir: Path) -> None:
    # Maker volume would earn 100 a USD: the engine's market orders all take, so only the taker rate counts.
    points = {"backpack_per_usd": "1", "taker_per_usd": {"hibachi": "1"}, "maker_per_usd": {"hibachi": "100"}}
    run = engine_factory({"points": points})
    wait_until(lambda: len(run.pairs(PairState.CLOSED)) >= 2, 30, "two closed pairs")
    run.runtime.command("pause", {})  # returns once the coordinator is idle: nothing new opens after it
    run.halt()  # no more ticks: the book stands still while the reports are read
    wait_until(lambda: not run.runtime.desk.claims.claimed(), 10, "the closer idle")
    args = ["--data-dir", str(short_dir), "report"]
    data = json.loads(_cli([*args, "--format", "json"], short_dir).stdout)
    pairs, total = data["pairs"], data["total"]
    assert len(pairs) >= 2
    closed = [p for p in pairs if p["state"] == "closed"]
    for p in closed:
        volume = D(p["volume_backpack"]) + D(p["volume_hibachi"])
        assert D(p["points"]) == volume  # 1 point per USD of taker volume on both venues
        assert D(p["cost_per_1m"]) == (-D(p["realized_pnl"]) / volume * 1_000_000).quantize(D("0.01"))
    assert D(total["fees"]) == sum(D(p["fees"]) for p in pairs)
    venues = {v["venue"]: v for v in data["venues"]}
    assert set(venues) == {"backpack", "hibachi"}
    for name, v in venues.items():
        assert D(v["maker_volume"]) == 0 and D(v["taker_volume"]) == D(total[f"volume_{name}"]) > 0
        assert D(v["points"]) == sum(D(p[f"volume_{name}"]) for p in closed)  # closed pairs earn points
        assert D(v["cost"]) == D(v["fees"]) - D(v["funding"]) + D(v["spread"]) and D(v["fees"]) > 0
        assert D(v["cost_per_1m"]) == (D(v["cost"]) / D(v["volume"]) * 1_000_000).quantize(D("0.01"))
    assert sum(D(v["fees"]) for v in venues.values()) == D(total["fees"])
    assert D(total["realized_pnl"]) == sum(D(p["realized_pnl"]) for p in pairs)
    csv_lines = _cli([*args, "--format", "csv"], short_dir).stdout.strip().splitlines()
    assert csv_lines[0].startswith("pair,market,state") and csv_lines[-1].startswith("total,")
    assert len(csv_lines) == len(pairs) + 2
    table = _cli([*args, "--since", "2000-01-01", "--plot", str(short_dir / "r.png")], short_dir)
    assert table.returncode == 0, table.stderr
    assert "cost/1M" in table.stdout and "total" in table.stdout and "points/USD cost" in table.stdout
    assert (short_dir / "r.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    future = json.loads(_cli([*args, "--format", "json", "--since", "2999-01-01"], short_dir).stdout)
    assert future["pairs"] == [] and future["total"]["state"] == "0 pairs"
