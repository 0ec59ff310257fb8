"""storage/db.py and storage/checks.py: durability pragmas, start-up checks, the write probe, read-only report."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, event, insert, text
from sqlalchemy.exc import OperationalError

from actors.messages import CreatePair, WriteBatch
from core.clock import FakeClock
from core.domain import Side, Venue
from reports import summary
from storage.checks import DatabaseProblem, check_database, describe_storage_error, probe_write
from storage.db import SchemaVersionError, make_engine, open_database, open_database_readonly
from storage.records import LegPlan, PairPlan
from storage.schema import schema_version
from tests.writing import write

ROOT = Path(__file__).resolve().parents[2]

PLAN = PairPlan(
    market="BTC",
    long=LegPlan(Venue.BACKPACK, "BTC_USDC_PERP", Side.LONG),
    short=LegPlan(Venue.HIBACHI, "BTC/USDT-P", Side.SHORT),
    leverage=D("2"),
    notional=D("1000"),
    quantity=D("0.0153"),
    duration_s=3600,
)


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


def _ro_url(path: Path) -> str:
    return f"sqlite:///file:{path}?mode=ro&uri=true"


def _database_with_pairs(path: Path, pairs: int = 1) -> None:
    engine = open_database(_url(path), FakeClock())
    write(engine, FakeClock(), WriteBatch(tuple(CreatePair(PLAN) for _ in range(pairs))))
    engine.dispose()


def _big_sqlite_file(path: Path, rows: int = 3000) -> int:
    """A real database of about 100 pages (checkpointed, no -wal); returns its page count."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a TEXT)")
    conn.execute("CREATE INDEX t_a ON t (a)")
    conn.executemany("INSERT INTO t (a) VALUES (?)", [(f"row {i} " + "x" * 50,) for i in range(rows)])
    conn.commit()
    pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
    conn.close()
    return pages


def _problem(url: str) -> DatabaseProblem:
    with pytest.raises(DatabaseProblem) as caught:
        check_database(url)
    message = str(caught.value)
    assert "\n" not in message
    return caught.value


# ---- synchronous=FULL -------------------------------------------------------------------------------------


def test_sqlite_connections_sync_every_commit(tmp_path: Path) -> None:
    engine = make_engine(_url(tmp_path / "x.db"))
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    engine.dispose()


# ---- check_database ---------------------------------------------------------------------------------------


def test_check_passes_a_healthy_database_and_a_new_one(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    _database_with_pairs(path)
    check_database(_url(path))
    check_database(_url(tmp_path / "new" / "y.db"))
    assert (tmp_path / "new").is_dir()
    assert not (tmp_path / "new" / "y.db").exists()  # a check creates no database
    check_database("sqlite://")


def test_check_names_a_directory_that_cannot_be_created(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    path = tmp_path / "file" / "data" / "x.db"
    problem = _problem(_url(path))
    assert str(path) in str(problem)
    assert "cannot create its directory" in str(problem)


def test_check_refuses_a_file_that_cannot_be_written(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    _database_with_pairs(path)
    problem = _problem(_ro_url(path))
    assert str(path) in str(problem)
    assert "read-only" in problem.problem
    assert "write access" in problem.fix


def test_check_refuses_a_file_that_is_no_database(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    _database_with_pairs(path)
    with path.open("r+b") as f:
        f.write(b"this is not sqlite!!")
    problem = _problem(_url(path))
    assert str(path) in str(problem)
    assert "not a SQLite database" in problem.problem
    assert "backup" in problem.fix


def test_check_refuses_a_truncated_file(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    pages = _big_sqlite_file(path)
    os.truncate(path, pages * 4096 // 2)
    problem = _problem(_url(path))
    assert "corrupt" in problem.problem
    assert "backup" in problem.fix


def test_check_finds_a_corrupt_page_in_the_middle(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    pages = _big_sqlite_file(path)
    with path.open("r+b") as f:
        f.seek(4096 * (pages // 2))
        f.write(bytes(range(256)) * 16)
    conn = sqlite3.connect(path)  # opening and a small read still work: only a full check finds it
    assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone() == (2,)
    conn.close()
    problem = _problem(_url(path))
    assert str(path) in str(problem)
    assert "corrupt (quick_check: " in problem.problem
    assert "restore the latest backup" in problem.fix


def test_check_of_another_backend_without_its_driver_is_one_line() -> None:
    problem = _problem("mysql://farmer:secret@127.0.0.1:1/farm")
    assert "secret" not in str(problem)
    assert "driver" in str(problem)
    assert "not a database URL" in str(_problem("data/perp-farmer.db"))


# ---- describe_storage_error, probe_write ------------------------------------------------------------------


def _limit_pages(engine: Engine, extra: int) -> None:
    """Every connection of `engine` may grow the file by `extra` pages only: SQLite then reports a real
    "database or disk is full"."""

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        pages = dbapi_connection.execute("PRAGMA page_count").fetchone()[0]
        dbapi_connection.execute(f"PRAGMA max_page_count = {pages + extra}")

    event.listen(engine, "connect", on_connect)


def test_a_full_database_is_described_in_one_line(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    _database_with_pairs(path)
    engine = make_engine(_url(path))
    _limit_pages(engine, 0)
    with pytest.raises(OperationalError) as caught, engine.begin() as conn:
        conn.execute(
            insert(schema_version), [{"version": 100 + i, "applied_at": FakeClock().now()} for i in range(500)]
        )
    engine.dispose()
    line = describe_storage_error(caught.value, str(path))
    assert line == (
        f"database {path}: the disk (or the database's size limit) is full; free space on that filesystem, then restart"
    )


def test_probe_write_commits_a_real_write_and_leaves_no_trace(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    engine = open_database(_url(path), FakeClock(), manual_checkpoints=True)
    with engine.connect() as conn:
        tables = conn.execute(text("SELECT name FROM sqlite_master ORDER BY name")).scalars().all()
    wal_before = Path(f"{path}-wal").stat().st_size
    probe_write(engine)
    assert Path(f"{path}-wal").stat().st_size > wal_before  # a frame was committed to the WAL
    with engine.connect() as conn:
        assert conn.execute(text("SELECT name FROM sqlite_master ORDER BY name")).scalars().all() == tables
        assert conn.execute(text("PRAGMA user_version")).scalar() == 0
    engine.dispose()


def test_probe_write_fails_on_a_full_database(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    _database_with_pairs(path)
    engine = make_engine(_url(path))
    _limit_pages(engine, 3)  # room for a small row still, not for the probe's 16 KiB
    with pytest.raises(DatabaseProblem) as caught:
        probe_write(engine)
    engine.dispose()
    assert str(caught.value).startswith(f"database {path}: the disk (or the database's size limit) is full")


def test_probe_write_fails_on_a_read_only_database(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    _database_with_pairs(path)
    engine = make_engine(_ro_url(path))
    with pytest.raises(DatabaseProblem) as caught:
        probe_write(engine)
    engine.dispose()
    assert "read-only" in caught.value.problem


# ---- open_database_readonly and the report ----------------------------------------------------------------


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_report_reads_without_changing_anything(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    _database_with_pairs(path, 2)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=DELETE")  # so that setting WAL, or any write, would show in the file
    conn.close()
    before = _digest(path)
    rows = summary.load(_url(path))
    assert [r.pair for r in rows] == ["1", "2", "total"]
    assert _digest(path) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.db"]
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    conn.close()


def test_read_only_engine_refuses_writes(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    _database_with_pairs(path)
    engine = open_database_readonly(_url(path))
    with pytest.raises(OperationalError, match="readonly"), engine.begin() as conn:
        conn.execute(insert(schema_version).values(version=7, applied_at=FakeClock().now()))
    engine.dispose()


def test_report_sees_commits_still_in_the_wal(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    writer = open_database(_url(path), FakeClock(), manual_checkpoints=True)
    write(writer, FakeClock(), CreatePair(PLAN))
    assert Path(f"{path}-wal").stat().st_size > 0
    assert [r.pair for r in summary.load(_url(path))] == ["1", "total"]
    writer.dispose()


def test_report_on_a_damaged_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    _database_with_pairs(path, 200)
    conn = sqlite3.connect(path)
    page = conn.execute("SELECT max(pageno) FROM dbstat WHERE name = 'hedge_pairs' AND pagetype = 'leaf'").fetchone()[0]
    conn.close()
    with path.open("r+b") as f:  # one of the pairs' pages, met halfway through the report
        f.seek(4096 * (page - 1))
        f.write(bytes(range(256)) * 16)
    with pytest.raises(DatabaseProblem) as caught:
        summary.load(_url(path))
    assert str(caught.value).startswith(f"database {path}: is corrupt (database disk image is malformed); stop")


def test_read_only_open_says_what_is_wrong(tmp_path: Path) -> None:
    with pytest.raises(DatabaseProblem, match="does not exist"):
        open_database_readonly(_url(tmp_path / "missing.db"))
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(DatabaseProblem, match="holds no perp-farmer tables"):
        open_database_readonly(_url(other))
    newer = tmp_path / "newer.db"
    _database_with_pairs(newer)
    conn = sqlite3.connect(newer)
    conn.execute("INSERT INTO schema_version VALUES (99, '2026-01-01 00:00:00.000000')")
    conn.commit()
    conn.close()
    with pytest.raises(SchemaVersionError):
        open_database_readonly(_url(newer))


# ---- a data directory this process cannot write (as an operator running `report` as another user) ------


def _user_namespace_works() -> bool:
    try:
        return subprocess.run(["unshare", "--user", "--", "true"], check=False, timeout=10).returncode == 0
    except OSError:
        return False


@pytest.fixture
def shared_dir(tmp_path: Path) -> Path:
    """A data directory; `_as_reader` runs code that can read it but write neither it nor its files."""
    if os.geteuid() == 0 and not _user_namespace_works():
        pytest.fail("running as root without user namespaces: no way to take away root's write access")
    path = tmp_path / "data"
    path.mkdir()
    return path


def _as_reader(directory: Path, code: str) -> dict[str, Any]:
    """Run `code` (it prints one JSON line) where `directory` and its files are read-only: modes 555/444, and for
    root a new user namespace, in which root keeps no power over files it does not own there."""
    files = list(directory.iterdir())
    for p in files:
        p.chmod(0o444)
    directory.chmod(0o555)
    prefix = ["unshare", "--user", "--"] if os.geteuid() == 0 else []
    try:
        done = subprocess.run(
            [*prefix, sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
        )
    finally:
        directory.chmod(0o755)
        for p in files:
            p.chmod(0o644)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


_REPORT = """
import json
from reports import summary
from storage.checks import DatabaseProblem
try:
    print(json.dumps({"pairs": [r.pair for r in summary.load(%r)]}))
except DatabaseProblem as exc:
    print(json.dumps({"problem": str(exc)}))
"""

_CHECK = """
import json
from storage.checks import DatabaseProblem, check_database
try:
    check_database(%r)
    print(json.dumps({"ok": True}))
except DatabaseProblem as exc:
    print(json.dumps({"problem": str(exc)}))
"""


def test_report_reads_a_running_supervisors_database_from_an_unwritable_directory(shared_dir: Path) -> None:
    path = shared_dir / "x.db"
    writer = open_database(_url(path), FakeClock(), manual_checkpoints=True)
    write(writer, FakeClock(), CreatePair(PLAN))  # only in the WAL: the reader needs the -shm to see it
    try:
        assert _as_reader(shared_dir, _REPORT % _url(path)) == {"pairs": ["1", "total"]}
    finally:
        writer.dispose()


def test_report_reads_a_stopped_supervisors_database_from_an_unwritable_directory(shared_dir: Path) -> None:
    path = shared_dir / "x.db"
    _database_with_pairs(path)
    assert sorted(p.name for p in shared_dir.iterdir()) == ["x.db"]  # a clean stop removed -wal and -shm
    assert _as_reader(shared_dir, _REPORT % _url(path)) == {"pairs": ["1", "total"]}


def test_report_refuses_a_wal_it_cannot_read_whole(shared_dir: Path, tmp_path: Path) -> None:
    writer = open_database(_url(tmp_path / "x.db"), FakeClock(), manual_checkpoints=True)
    write(writer, FakeClock(), CreatePair(PLAN))
    for name in ("x.db", "x.db-wal"):  # a copy (or a crash) that left no -shm
        shutil.copy(tmp_path / name, shared_dir / name)
    writer.dispose()
    problem = _as_reader(shared_dir, _REPORT % _url(shared_dir / "x.db"))["problem"]
    assert problem.startswith(f"database {shared_dir / 'x.db'}: its -wal file holds commits")


def test_check_refuses_a_data_directory_that_cannot_be_written(shared_dir: Path) -> None:
    path = shared_dir / "x.db"
    _database_with_pairs(path)
    problem = _as_reader(shared_dir, _CHECK % _url(path))["problem"]
    assert problem.startswith(f"database {path}: cannot write in {shared_dir} (Permission denied)")
