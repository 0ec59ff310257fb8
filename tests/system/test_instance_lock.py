"""One supervisor per data dir, and per PostgreSQL database, against a real PostgreSQL server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from storage.lock import DatabaseLock, InstanceLock, InstanceLockedError
from tests.helpers import wait_until
from tests.postgres import postgres_server

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    with postgres_server() as url:
        yield url


def test_the_data_dir_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    first = InstanceLock(tmp_path).acquire()
    with pytest.raises(InstanceLockedError, match=rf"pid {os.getpid()}\) is already running on data dir"):
        InstanceLock(tmp_path).acquire()
    first.release()
    InstanceLock(tmp_path).acquire().release()


def test_the_database_lock_is_exclusive_on_postgresql(postgres_url: str) -> None:
    first = DatabaseLock(postgres_url).acquire()
    try:
        with pytest.raises(InstanceLockedError, match="already running on database"):
            DatabaseLock(postgres_url).acquire()
    finally:
        first.release()
    DatabaseLock(postgres_url).acquire().release()


def test_fleet_supervisors_share_a_postgresql_database_but_not_with_a_single_engine(postgres_url: str) -> None:
    first, second = DatabaseLock(postgres_url, fleet=True).acquire(), DatabaseLock(postgres_url, fleet=True).acquire()
    try:
        with pytest.raises(InstanceLockedError, match="already running on database"):
            DatabaseLock(postgres_url).acquire()  # a single engine trades without a lease: never beside a fleet
        first.release()
        with pytest.raises(InstanceLockedError, match="already running on database"):
            DatabaseLock(postgres_url).acquire()  # while any fleet supervisor is left
    finally:
        first.release()
        second.release()
    single = DatabaseLock(postgres_url).acquire()
    try:
        with pytest.raises(InstanceLockedError, match="not a fleet's .* fleet supervisors share a database"):
            DatabaseLock(postgres_url, fleet=True).acquire()
    finally:
        single.release()
    DatabaseLock(postgres_url, fleet=True).acquire().release()


def test_fleet_supervisors_share_a_sqlite_file_but_not_with_a_single_engine(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared' / 'farm.db'}"
    first = DatabaseLock(url, fleet=True).acquire()
    try:
        DatabaseLock(url, fleet=True).acquire().release()  # two fleets on one host: the leases keep them apart
        with pytest.raises(InstanceLockedError, match="already running on database .*farm.db"):
            DatabaseLock(url).acquire()  # a single engine trades without a lease
    finally:
        first.release()
    single = DatabaseLock(url).acquire()
    try:
        with pytest.raises(InstanceLockedError, match="not a fleet's .*farm.db"):
            DatabaseLock(url, fleet=True).acquire()
    finally:
        single.release()
    DatabaseLock(url, fleet=True).acquire().release()


def test_a_killed_holder_frees_the_database_lock(postgres_url: str) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", f"from storage.lock import DatabaseLock; DatabaseLock({postgres_url!r}).acquire();"
         "print('held', flush=True); import time; time.sleep(120)"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(InstanceLockedError):
            DatabaseLock(postgres_url).acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)

        def free() -> bool:
            try:
                DatabaseLock(postgres_url).acquire().release()
            except InstanceLockedError:
                return False
            return True

        wait_until(free, 20, "the server to drop the dead holder's lock")
    finally:
        if holder.poll() is None:
            holder.kill()


def test_a_supervisor_on_a_locked_database_exits_before_touching_it(postgres_url: str, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'data_dir = "{tmp_path / "d"}"\n[database]\nurl = "{postgres_url}"\n')
    held = DatabaseLock(postgres_url).acquire()
    try:
        env = {k: v for k, v in os.environ.items() if not k.upper().startswith("APP__")}
        out = subprocess.run(
            [sys.executable, str(ROOT / "supervisor.py"), "--config", str(config), "run"],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    finally:
        held.release()
    assert out.returncode == 1
    assert "already running on database" in out.stderr and "Traceback" not in out.stderr


def test_two_data_dirs_cannot_share_one_sqlite_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'shared' / 'farm.db'}"
    first = DatabaseLock(url).acquire()
    try:
        with pytest.raises(InstanceLockedError, match="already running on database .*farm.db"):
            DatabaseLock(url).acquire()
    finally:
        first.release()
    DatabaseLock(url).acquire().release()
