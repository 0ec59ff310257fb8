"""The fleet supervisor with real worker processes (tests/fleet_fake_worker.py): each worker restarted alone,
the silent killed, the hopeless given up, all stopped in reverse order, and the fleet's control socket merging
the workers' replies."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import signal
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from control.client import ControlUnavailableError, call
from control.commands import COMMANDS
from control.server import ControlServer
from fleet.aggregate import FleetControl
from fleet.policy import Knobs
from fleet.procs import WorkerProcess, WorkerSpec, worker_address
from fleet.supervisor import FleetSupervisor
from tests.helpers import clean_env, wait_until

ROOT = Path(__file__).resolve().parents[2]
FAST = Knobs(
    heartbeat_interval_s=0.1,
    heartbeat_timeout_s=1.0,
    max_restarts=3,
    restart_window_s=60.0,
    backoff_min_s=0.05,
    backoff_max_s=0.2,
    stop_timeout_s=3.0,
    start_timeout_s=15.0,  # an interpreter importing pynng on a busy machine
)
PAIRS = {"a": "1,4", "b": "2,5", "c": "3"}


def fake_spec(directory: Path, account: str, *extra: str) -> WorkerSpec:
    address = worker_address(directory, account)
    argv = [sys.executable, "-m", "tests.fleet_fake_worker", "--account", account, "--address", address,
            "--dir", str(directory), "--pairs", PAIRS.get(account, ""), *extra]  # fmt: skip
    return WorkerSpec(account, argv, address, env=clean_env(PYTHONPATH=str(ROOT)))


def events(directory: Path, what: str, account: str | None = None) -> list[str]:
    """The accounts (in order) of the fake workers' `what` lines in starts.log."""
    log = directory / "starts.log"
    lines = [line.split() for line in log.read_text().splitlines()] if log.exists() else []
    return [acc for kind, acc, _pid in lines if kind == what and account in (None, acc)]


@pytest.fixture
def fleet(short_dir: Path) -> Iterator[Callable[..., FleetSupervisor]]:
    made: list[FleetSupervisor] = []

    def make(
        accounts: tuple[str, ...] = ("a", "b", "c"), knobs: Knobs = FAST, **extra: tuple[str, ...]
    ) -> FleetSupervisor:
        sup = FleetSupervisor([fake_spec(short_dir, a, *extra.get(a, ())) for a in accounts], knobs)
        made.append(sup)
        sup.start()
        return sup

    yield make
    for sup in made:
        sup.stop()


def row(sup: FleetSupervisor, account: str) -> dict:
    return next(r for r in sup.status() if r["account"] == account)


def turn_until(sup: FleetSupervisor, predicate: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    """Poll the supervisor until `predicate` holds."""

    def turned() -> bool:
        sup.poll()
        return predicate()

    wait_until(turned, timeout_s, what)


def answers(address: str) -> bool:
    """Whether a heartbeat sent to `address` is answered."""
    try:
        return call(address, "health", timeout_s=2)["ok"]
    except ControlUnavailableError:
        return False


def all_running(sup: FleetSupervisor) -> bool:
    return all(r["state"] == "running" for r in sup.status())


def pids(sup: FleetSupervisor) -> dict[str, int]:
    found = {r["account"]: r["pid"] for r in sup.status()}
    assert all(isinstance(pid, int) for pid in found.values()), found
    return found


def test_a_worker_killed_9_is_restarted_alone(fleet: Callable[..., FleetSupervisor], short_dir: Path) -> None:
    sup = fleet()
    turn_until(sup, lambda: all_running(sup), "every worker answering")
    before = pids(sup)
    os.kill(before["b"], signal.SIGKILL)
    turn_until(sup, lambda: row(sup, "b")["restarts"] == 1 and row(sup, "b")["state"] == "running", "b back")
    after = pids(sup)
    assert after["b"] != before["b"]
    assert {k: after[k] for k in "ac"} == {k: before[k] for k in "ac"}  # the siblings were not touched
    assert [row(sup, k)["restarts"] for k in "ac"] == [0, 0]
    assert row(sup, "b")["last_exit"] == "killed by SIGKILL"
    assert sorted(events(short_dir, "start")) == ["a", "b", "b", "c"]


def test_a_silent_worker_is_killed_and_restarted(fleet: Callable[..., FleetSupervisor], short_dir: Path) -> None:
    sup = fleet()
    turn_until(sup, lambda: all_running(sup), "every worker answering")
    before = pids(sup)
    (short_dir / "b.hang").touch()
    turn_until(sup, lambda: events(short_dir, "hang") == ["b"], "b hanging", 5)
    turn_until(sup, lambda: row(sup, "b")["restarts"] == 1 and row(sup, "b")["state"] == "running", "b back")
    assert re.fullmatch(r"silent for \d+\.\ds: killed", row(sup, "b")["last_exit"])
    with pytest.raises(ProcessLookupError):
        os.kill(before["b"], 0)  # killed and reaped
    assert {k: pids(sup)[k] for k in "ac"} == {k: before[k] for k in "ac"}
    assert events(short_dir, "start", "b") == ["b", "b"]


def test_a_worker_that_keeps_dying_is_given_up(
    fleet: Callable[..., FleetSupervisor], short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (short_dir / "b.exit").write_text("1")
    sup = fleet()
    with caplog.at_level(logging.CRITICAL, logger="fleet.supervisor"):
        turn_until(sup, lambda: row(sup, "b")["state"] == "given_up", "b given up")
    assert events(short_dir, "start", "b") == ["b"] * (FAST.max_restarts + 1)  # the first start and 3 restarts
    assert row(sup, "b")["restarts"] == FAST.max_restarts and row(sup, "b")["last_exit"] == "exited with status 1"
    assert any("worker b" in r.message and "given up" in r.message for r in caplog.records)
    turn_until(sup, lambda: all(row(sup, k)["state"] == "running" for k in "ac"), "a and c answering")
    sup.poll()
    assert events(short_dir, "start", "b") == ["b"] * (FAST.max_restarts + 1)  # and never started again


def test_a_worker_with_a_bad_configuration_is_given_up_at_once(
    fleet: Callable[..., FleetSupervisor], short_dir: Path
) -> None:
    (short_dir / "a.exit").write_text("2")
    sup = fleet(("a",))
    turn_until(sup, lambda: row(sup, "a")["state"] == "given_up", "a given up")
    assert events(short_dir, "start") == ["a"]


def test_stop_terminates_workers_in_reverse_start_order(
    fleet: Callable[..., FleetSupervisor], short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sup = fleet()
    turn_until(sup, lambda: all_running(sup), "every worker answering")
    started = pids(sup)
    with caplog.at_level(logging.INFO, logger="fleet.supervisor"):
        sup.stop()
    signalled = [r.getMessage().split()[2] for r in caplog.records if r.getMessage().startswith("stopping worker")]
    assert signalled == ["c", "b", "a"]  # signalled in reverse start order, then stopping side by side
    assert sorted(events(short_dir, "stop")) == ["a", "b", "c"]
    assert [r["state"] for r in sup.status()] == ["stopped"] * 3
    for pid in started.values():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_stop_kills_a_worker_that_ignores_sigterm(fleet: Callable[..., FleetSupervisor], short_dir: Path) -> None:
    knobs = dataclasses.replace(FAST, stop_timeout_s=0.3)
    sup = fleet(("a", "b"), knobs, b=("--ignore-term",))
    turn_until(sup, lambda: all_running(sup), "every worker answering")
    sup.stop()
    assert events(short_dir, "stop") == ["a"]  # b never saw its SIGTERM: it was killed
    assert row(sup, "b")["last_exit"] == "killed by SIGKILL"
    assert row(sup, "a")["last_exit"] == "exited with status 0"


def test_worker_sockets_are_private(fleet: Callable[..., FleetSupervisor], short_dir: Path) -> None:
    sup = fleet(("a", "b"))
    turn_until(sup, lambda: all_running(sup), "every worker answering")
    assert stat.S_IMODE((short_dir / "workers").stat().st_mode) == 0o700
    for account in "ab":
        assert stat.S_IMODE((short_dir / "workers" / f"{account}.ipc").stat().st_mode) == 0o600


def test_a_worker_whose_supervisor_went_silent_stops(short_dir: Path) -> None:
    spec = fake_spec(short_dir, "a", "--watch-timeout", "0.5")
    proc = WorkerProcess(spec)
    (short_dir / "workers").mkdir(mode=0o700)
    proc.start()
    try:
        # heartbeats keep it going well past its timeout...
        for _ in range(10):
            wait_until(lambda: answers(spec.address), 15, "a heartbeat answered")
            assert proc.wait(0.1) is None
        # ...and without them it goes
        wait_until(lambda: proc.poll() is not None, 5, "the worker gone")
        assert proc.poll() == 0 and events(short_dir, "orphan") == ["a"]
    finally:
        proc.kill()
        proc.wait(5)


# ---- the fleet's control socket ------------------------------------------------------------------------------


@pytest.fixture
def served(fleet: Callable[..., FleetSupervisor], short_dir: Path) -> Iterator[tuple[FleetSupervisor, str]]:
    sup = fleet()
    turn_until(sup, lambda: all_running(sup), "every worker answering")
    server = ControlServer(f"ipc://{short_dir}/control.ipc", FleetControl(sup)).start()
    try:
        yield sup, server.address
    finally:
        server.stop()


def test_fleet_status_merges_every_account(served: tuple[FleetSupervisor, str]) -> None:
    sup, address = served
    reply = call(address, "status")
    assert reply["ok"]
    data = reply["data"]
    assert list(data["accounts"]) == ["a", "b", "c"]
    assert data["fleet"]["workers"] == {"running": 3}
    assert data["fleet"]["pairs"] == {"open": 5, "closed": 3}
    assert data["fleet"]["open_pairs"] == 5
    assert data["fleet"]["equity"] == {"venue_a": "3001.50", "venue_b": "2998.50"}
    assert data["fleet"]["unrealized_pnl"] == "3.75"
    assert data["accounts"]["b"]["process"]["pid"] == pids(sup)["b"]
    text = COMMANDS["status"].render(data)
    assert "fleet of 3 accounts: 3 running" in text and "== b ==" in text


def test_fleet_pairs_carry_their_account(served: tuple[FleetSupervisor, str]) -> None:
    _sup, address = served
    rows = call(address, "pairs")["data"]
    assert [(r["account"], r["id"]) for r in rows] == [("b", 5), ("a", 4), ("c", 3), ("b", 2), ("a", 1)]
    assert COMMANDS["pairs"].render(rows).splitlines()[0].split()[:2] == ["account", "id"]
    only_b = call(address, "pairs", {"account": "b"})["data"]
    assert [r["id"] for r in only_b] == [5, 2] and "account" not in only_b[0]  # that worker's reply, unchanged


def test_fleet_close_all_reaches_every_account_or_the_one_named(
    served: tuple[FleetSupervisor, str], short_dir: Path
) -> None:
    _sup, address = served
    data = call(address, "close-all")["data"]
    assert data == {
        "accounts": {"a": {"states": {"1": "closed", "4": "closed"}}, "b": {"states": {"2": "closed", "5": "closed"}},
                     "c": {"states": {"3": "closed"}}},
        "errors": {},
    }  # fmt: skip
    assert sorted(events(short_dir, "close-all")) == ["a", "b", "c"]
    assert call(address, "close-all", {"account": "c"})["data"] == {"states": {"3": "closed"}}
    assert sorted(events(short_dir, "close-all")) == ["a", "b", "c", "c"]
    assert "a:\n  pair 1: closed" in COMMANDS["close-all"].render(data)


def test_fleet_pause_and_resume(served: tuple[FleetSupervisor, str], short_dir: Path) -> None:
    _sup, address = served
    assert call(address, "pause", {"reason": "drill", "account": "a"})["data"] == {
        "trading": "paused",
        "reason": "drill",
    }
    status = call(address, "status")["data"]["accounts"]
    assert {k: v["status"]["trading"]["mode"] for k, v in status.items()} == {
        "a": "paused",
        "b": "normal",
        "c": "normal",
    }
    resumed = call(address, "resume")["data"]
    assert resumed["accounts"] == {k: {"trading": "normal"} for k in "abc"}
    assert sorted(events(short_dir, "resume")) == ["a", "b", "c"]


def test_fleet_pair_and_close_go_to_the_owner_alone(served: tuple[FleetSupervisor, str], short_dir: Path) -> None:
    _sup, address = served
    assert call(address, "pair", {"id": 5})["data"]["pair"]["account"] == "b"
    assert call(address, "close", {"id": 5})["data"] == {"account": "b", "states": {"5": "closed"}}
    assert events(short_dir, "close") == ["b"]
    missing = call(address, "close", {"id": 99})
    assert missing["error"]["code"] == "not_found" and "any account" in missing["error"]["message"]


def test_fleet_refuses_an_unknown_account(served: tuple[FleetSupervisor, str]) -> None:
    _sup, address = served
    reply = call(address, "status", {"account": "zed"})
    assert reply["error"]["code"] == "unknown_account"
    assert "a, b, c" in reply["error"]["message"]
    assert call(address, "status", {"account": "Not A Name"})["error"]["code"] == "bad_request"


def test_fleet_health_and_a_worker_given_up(fleet: Callable[..., FleetSupervisor], short_dir: Path) -> None:
    (short_dir / "c.exit").write_text("2")
    sup = fleet()
    turn_until(sup, lambda: all(row(sup, k)["state"] == "running" for k in "ab"), "a and b answering")
    turn_until(sup, lambda: row(sup, "c")["state"] == "given_up", "c given up")
    server = ControlServer(f"ipc://{short_dir}/control.ipc", FleetControl(sup)).start()
    try:
        health = call(server.address, "health")["data"]
        assert not health["healthy"] and health["accounts"]["c"]["problems"] == ["worker given_up"]
        assert COMMANDS["health"].render(health) == "UNHEALTHY: c given_up (worker given_up)"
        assert call(server.address, "health", {"account": "a"})["data"]["healthy"]
        paused = call(server.address, "pause")["data"]
        assert set(paused["accounts"]) == {"a", "b"} and set(paused["errors"]) == {"c"}
        assert COMMANDS["pause"].failed is not None and COMMANDS["pause"].failed(paused)
        status = call(server.address, "status")["data"]
        assert status["accounts"]["c"]["status"] is None and status["fleet"]["workers"] == {"running": 2, "given_up": 1}
    finally:
        server.stop()
