"""What a hostile review broke in the running process: a full disk, a second supervisor, a pause that waited or
was forgotten, a shutdown that raised, a tick error nobody saw, and a health check that said yes regardless."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import event

from actors.closer import Closer
from actors.coordinator import HedgeCoordinator
from actors.desk import Desk
from actors.health import HEARTBEAT_KEY
from actors.messages import GetStatus, OpenDeclined, OpenNow, ReconcilePairs, SetLeverage, Tick, TradingMode
from actors.runtime import PAUSE_KEY, Runtime
from core.config import load_settings
from core.domain import EventLevel, PairState
from tests.helpers import wait_until
from tests.system.conftest import Running

ROOT = Path(__file__).resolve().parents[2]
Factory = Callable[..., Running]
BTC_ONLY = [{"name": "BTC", "backpack_symbol": "BTC_USDC_PERP", "hibachi_symbol": "BTC/USDT-P"}]
HOLD = {"trading": {"markets": BTC_ONLY, "min_duration_hours": 1, "max_duration_hours": 1}}


def _fill_database(engine: Any) -> None:
    """From now on every connection of `engine` refuses to grow the file: SQLite's own "database or disk is
    full" (SQLITE_FULL), which is what a full disk gives."""

    def cap(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        pages = cursor.execute("PRAGMA page_count").fetchone()[0]
        cursor.execute(f"PRAGMA max_page_count = {pages}")
        cursor.close()

    event.listen(engine, "connect", cap)
    engine.dispose()  # pooled connections reconnect, capped


def _fill_with_snapshots(run: Running) -> None:
    """Writes that need new pages: the monitor's per-tick snapshots of an open pair."""
    run.wait_pair(PairState.OPEN, what="an open pair whose snapshots need new pages")


# ---- item 2: a full disk stops the process instead of hanging it -------------------------------------------


def test_a_database_that_cannot_be_written_stops_the_engine_with_a_critical_alert(engine_factory: Factory) -> None:
    run = engine_factory(HOLD, start_loop=False)
    sent: list[Any] = []
    run.runtime.alerts = type(
        "Sink", (), {"submit": lambda _self, alert: sent.append(alert), "stop": lambda _s: None}
    )()
    reason: list[str | None] = []
    loop = threading.Thread(target=lambda: reason.append(run.runtime.run(run.stop, 0.02)), daemon=True)
    loop.start()
    _fill_with_snapshots(run)
    _fill_database(run.runtime.db)
    loop.join(30)
    assert not loop.is_alive(), "the main loop went on with a database that refuses writes"
    assert reason and reason[0] is not None and "database cannot be written" in reason[0]
    assert [a.kind for a in sent if a.level.value == "critical"] == ["storage_failed"]
    health = run.runtime.command("health", {})
    assert health["healthy"] is False and health["database"] is False
    run.runtime.shutdown()  # returns, whatever it could not do (it raised before)


def test_without_the_writer_an_event_is_logged_at_its_level_and_not_written_around_it(
    short_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = Runtime(load_settings(None, {"data_dir": str(short_dir)}))  # not started: there is no writer
    try:
        with caplog.at_level(logging.INFO, logger="actors.runtime"):
            engine.record_event(EventLevel.CRITICAL, "probe", "the writer is gone", actor="x")
            engine.record_event(EventLevel.INFO, "probe", "an ordinary event")
        logged = [(r.levelno, r.getMessage()) for r in caplog.records if "probe" in r.getMessage()]
        assert logged == [
            (logging.CRITICAL, "event probe not recorded (the writer is down): the writer is gone"),
            (logging.INFO, "event probe not recorded (the writer is down): an ordinary event"),
        ]
        assert engine.repo.list_events(limit=10) == []  # only the writer writes
    finally:
        engine.db.dispose()


def test_a_full_disk_makes_the_process_exit_non_zero_within_seconds(short_dir: Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test mounts a small tmpfs and needs root, as CI has")
    mount = short_dir / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount)], check=True)
    try:
        config = short_dir / "c.toml"
        config.write_text(
            f'data_dir = "{mount / "d"}"\n[control]\naddress = "ipc://{short_dir}/c.ipc"\n'
            "[trading]\nmin_duration_hours = 1\nmax_duration_hours = 1\n[monitor]\ninterval_s = 0.2\n"
        )
        proc = _supervisor(config, short_dir)
        try:
            wait_until(lambda: _pairs(config, short_dir, "open") >= 1, 30, "an open pair")
            filler = mount / "filler"
            # Unbuffered: a buffered file keeps the bytes the full disk refused and raises again when it closes.
            with filler.open("wb", buffering=0) as out, pytest.raises(OSError, match="No space left"):
                while True:
                    out.write(b"\0" * (1 << 16))
            code = proc.wait(60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        stderr = proc.stderr.read()  # type: ignore[union-attr]
        assert code == 1, stderr[-2000:]
        assert "the database cannot be written" in stderr
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


# ---- item 5: one supervisor per data dir --------------------------------------------------------------------


def _supervisor(config: Path, cwd: Path, *args: str) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("APP__")}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "supervisor.py"), "--config", str(config), "run", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _cli(config: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("APP__")}
    return subprocess.run(
        [sys.executable, str(ROOT / "supervisor.py"), "--config", str(config), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _pairs(config: Path, cwd: Path, state: str) -> int:
    out = _cli(config, cwd, "pairs", "--json", "--state", state)
    return len(json.loads(out.stdout)) if out.returncode == 0 else -1


@pytest.fixture
def stopper() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()


def test_a_second_supervisor_on_the_same_data_dir_is_refused(
    short_dir: Path, stopper: list[subprocess.Popen[str]]
) -> None:
    first, second = short_dir / "a.toml", short_dir / "b.toml"
    for path, sock in ((first, "a.ipc"), (second, "b.ipc")):  # another control address, the same data dir
        path.write_text(f'data_dir = "d"\n[control]\naddress = "ipc://{short_dir}/{sock}"\n')
    stopper.append(_supervisor(first, short_dir))
    wait_until(lambda: _cli(first, short_dir, "health").returncode == 0, 30, "the first supervisor healthy")
    again = _supervisor(second, short_dir)
    stopper.append(again)
    code = again.wait(30)
    stderr = again.stderr.read()  # type: ignore[union-attr]
    assert code == 1 and "already running on data dir" in stderr, stderr[-2000:]
    assert f"pid {stopper[0].pid}" in stderr
    assert _cli(first, short_dir, "health").returncode == 0  # the first one is untouched


# ---- item 7: pause answers at once and is kept ------------------------------------------------------------------


def _block_opens(monkeypatch: pytest.MonkeyPatch, release: threading.Event) -> threading.Event:
    """Make the coordinator's next open hang until `release` (an open waiting on a slow venue); returns an
    event set once the coordinator is inside it."""
    busy = threading.Event()
    original = HedgeCoordinator.open_pair

    def slow_open(actor: HedgeCoordinator, market: str | None = None) -> Any:
        busy.set()
        release.wait(30)
        return original(actor, market)

    monkeypatch.setattr(HedgeCoordinator, "open_pair", slow_open)
    return busy


def test_pause_is_answered_while_the_coordinator_is_busy_opening(
    engine_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = engine_factory(HOLD, start_loop=False)
    release = threading.Event()
    busy = _block_opens(monkeypatch, release)
    try:
        run.runtime.supervisor.ref("coordinator").tell(OpenNow())  # type: ignore[union-attr]
        assert busy.wait(10)
        reply: list[Any] = []
        pauser = threading.Thread(target=lambda: reply.append(run.runtime.command("pause", {"reason": "r"})))
        pauser.start()
        pauser.join(10)
        assert reply == [{"trading": "paused", "reason": "r"}], "pause waited behind the open"
        assert json.loads(run.runtime.repo.get_meta(PAUSE_KEY))["reason"] == "r"  # kept before it answered
    finally:
        release.set()
    # The open the coordinator was busy with had not recorded its orders when the pause was answered: it
    # finds the kept pause before it does, and the gate (the coordinator's to write) says paused.
    coordinator = run.runtime.supervisor.ref("coordinator")
    assert coordinator is not None
    coordinator.ask(GetStatus(), timeout=30)
    assert run.runtime.gate.paused and run.runtime.gate.reason == "r"
    assert run.pairs() == []


def test_pause_survives_a_restart_and_run_paused_starts_paused(engine_factory: Factory) -> None:
    first = engine_factory(HOLD, start_loop=False)
    first.runtime.command("pause", {"reason": "holiday"})
    first.runtime.shutdown()
    again = engine_factory(HOLD)
    assert again.runtime.gate.paused and again.runtime.gate.reason == "holiday"
    wait_until(lambda: "reconciled" in again.kinds(), 20, "start-up reconciliation")
    wait_until(lambda: (again.runtime.actor_status("monitor").get("ticks") or 0) >= 3, 20, "monitor ticks")
    assert again.pairs() == []  # nothing opened while paused
    again.runtime.command("resume", {})
    assert again.runtime.repo.get_meta(PAUSE_KEY) is None
    again.wait_pair(PairState.OPEN, what="a pair once resumed")


def test_run_paused_keeps_opening_paused_until_resume(short_dir: Path, stopper: list[subprocess.Popen[str]]) -> None:
    config = short_dir / "c.toml"
    config.write_text('data_dir = "d"\n[monitor]\ninterval_s = 0.2\n')
    stopper.append(_supervisor(config, short_dir, "--paused"))
    wait_until(lambda: _cli(config, short_dir, "health").returncode == 0, 30, "a healthy supervisor")
    status = json.loads(_cli(config, short_dir, "status", "--json").stdout)
    assert status["trading"]["mode"] == TradingMode.PAUSED.value
    assert status["trading"]["reason"] == "started with --paused"
    assert _cli(config, short_dir, "resume").returncode == 0
    wait_until(lambda: _pairs(config, short_dir, "open") >= 1, 30, "a pair once resumed")


# ---- item 9: shutdown never raises -----------------------------------------------------------------------------


def test_shutdown_with_an_open_outlasting_the_timeout_still_checkpoints(
    engine_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = engine_factory({**HOLD, "timings": {"shutdown_timeout_s": "0.5"}}, start_loop=False)
    release = threading.Event()
    busy = _block_opens(monkeypatch, release)
    try:
        run.runtime.supervisor.ref("coordinator").tell(OpenNow())  # type: ignore[union-attr]
        assert busy.wait(10)
        assert run.runtime.checkpointer is not None
        checkpoints = run.runtime.checkpointer.done
        assert run.runtime.shutdown() is False  # stopping the busy coordinator failed: said, not raised
        assert run.runtime.checkpointer.done > checkpoints  # the final checkpoint still ran
    finally:
        release.set()


# ---- item 4 (engine side): a tick that raises is logged with its traceback and recorded ------------------------


def test_a_tick_that_raises_is_logged_with_traceback_and_recorded(
    engine_factory: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    calls = {"n": 0}
    original = Closer.handle

    def flaky(self: Closer, message: Any) -> Any:
        if isinstance(message, Tick):
            calls["n"] += 1
            if calls["n"] == 3:
                raise RuntimeError("closer bug")
        return original(self, message)

    Closer.handle = flaky  # type: ignore[method-assign]
    try:
        with caplog.at_level(logging.ERROR, logger="actors.ticks"):
            run = engine_factory(HOLD)
            wait_until(lambda: "tick_failed" in run.kinds(), 20, "a tick_failed event")
            wait_until(lambda: run.runtime.supervisor.status()["closer"]["restarts"] >= 1, 20, "the closer restarted")
    finally:
        Closer.handle = original  # type: ignore[method-assign]
    failed = [r for r in caplog.records if "tick failed" in r.getMessage()]
    assert failed and failed[0].exc_info is not None and "closer bug" in str(failed[0].exc_info[1])


# ---- health tells the truth -----------------------------------------------------------------------------------


def test_health_is_false_while_reconciliation_keeps_failing(
    engine_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Closer.handle

    def refuse(self: Closer, message: Any) -> Any:
        if isinstance(message, ReconcilePairs):
            raise RuntimeError("venue refuses our keys")
        return original(self, message)

    monkeypatch.setattr(Closer, "handle", refuse)
    monkeypatch.setattr("actors.startup.RECONCILE_RETRY_S", 0.01)  # the backoff between attempts, shortened
    run = engine_factory(HOLD)
    wait_until(lambda: run.runtime.health_tracker.reconcile_failures >= 5, 60, "five failed reconciliations")
    health = run.runtime.command("health", {})
    assert health["healthy"] is False
    assert any(re.search(r"reconciliation failed \d+ times in a row", p) for p in health["problems"])
    assert run.pairs() == []


def test_health_is_true_on_a_running_engine(engine_factory: Factory) -> None:
    run = engine_factory(HOLD)
    run.wait_pair(PairState.OPEN, what="an open pair")
    wait_until(lambda: run.runtime.command("health", {})["healthy"], 20, "a healthy engine")
    assert run.runtime.command("health", {})["problems"] == []


def test_a_pause_that_comes_while_leverage_is_being_set_stops_that_open(
    engine_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Desk.ask_venue
    engines: list[Any] = []

    def pause_meanwhile(desk: Desk, venue: Any, message: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(message, SetLeverage):  # the operator's pause lands during the leverage round trips
            engines[0].command("pause", {"reason": "paused mid-open"})
        return original(desk, venue, message, *args, **kwargs)

    monkeypatch.setattr(Desk, "ask_venue", pause_meanwhile)
    run = engine_factory(HOLD, setup=engines.append)  # its first tick after reconciliation decides to open
    wait_until(lambda: run.runtime.gate.paused, 30, "the pause during the first open's leverage round trips")
    coordinator = run.runtime.supervisor.ref("coordinator")
    assert coordinator is not None
    coordinator.ask(GetStatus(), timeout=30)  # queued behind that open: it has finished when this answers
    reply = coordinator.ask(OpenNow(), timeout=30)
    assert isinstance(reply, OpenDeclined) and "paused" in reply.reason
    assert run.pairs() == []  # the open that was mid-way wrote nothing and sent nothing


def test_close_on_exit_that_cannot_close_exits_non_zero(short_dir: Path) -> None:
    config = short_dir / "c.toml"
    config.write_text(
        'data_dir = "d"\n[trading]\nmin_duration_hours = 1\nmax_duration_hours = 1\n'
        "[timings]\nshutdown_timeout_s = 3\nleg_retry_min_s = 0.1\nleg_retry_max_s = 0.2\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "supervisor.py"), "--config", str(config), "run", "--close-on-exit"],
        cwd=short_dir, env={k: v for k, v in os.environ.items() if not k.upper().startswith("APP__")},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        wait_until(lambda: _pairs(config, short_dir, "open") >= 1, 30, "an open pair")
        found = [re.search(r"Backpack simulator at (http://127\.0\.0\.1:\d+)", line) for line in lines]
        url = next(m.group(1) for m in found if m)
        refuse = {"kind": "reject", "count": 100_000, "code": "INVALID_ORDER", "reduce_only": True}
        assert requests.post(f"{url}/_sim/fault", json=refuse, timeout=5).ok  # every close on Backpack refused
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join(5)
    assert code == 1, "".join(lines)[-3000:]
    assert any("closing on exit did not finish" in line for line in lines)


def test_the_main_loop_keeps_turning_while_start_up_reconciliation_waits_on_a_venue(
    engine_factory: Factory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("actors.heartbeat.HEARTBEAT_EVERY_S", 0.05)
    release = threading.Event()
    original = Closer.handle

    def slow(self: Closer, message: Any) -> Any:
        if isinstance(message, ReconcilePairs):
            release.wait(30)  # a venue taking its time to answer the lookups
        return original(self, message)

    monkeypatch.setattr(Closer, "handle", slow)
    run = engine_factory(HOLD)
    try:
        beats: set[str | None] = set()

        def beating() -> bool:
            beats.add(run.repo.get_meta(HEARTBEAT_KEY))
            return len(beats - {None}) >= 3

        wait_until(beating, 20, "heartbeats while reconciliation waits")  # the loop turns, proving writes
        assert "startup" in run.runtime.gate.blocks  # still reconciling, still not opening
        assert not any("main loop" in p for p in run.runtime.command("health", {})["problems"])
    finally:
        release.set()
    wait_until(lambda: "reconciled" in run.kinds(), 20, "reconciliation to finish once the venue answers")
