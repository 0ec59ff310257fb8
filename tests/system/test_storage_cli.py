"""What a person sees when the database is damaged or shared: one line naming the file and the fix, never a
traceback; and `report` that reads without changing anything."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("APP__")}
    return subprocess.run(
        [sys.executable, str(ROOT / "supervisor.py"), "--data-dir", str(tmp_path / "d"), *args],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


def _database(tmp_path: Path) -> Path:
    """A database with this program's schema and enough pages to damage one in the middle, checkpointed."""
    from core.clock import FakeClock
    from storage.db import open_database

    path = tmp_path / "d" / "perp-farmer.db"
    engine = open_database(f"sqlite:///{path}", FakeClock())
    with engine.begin() as conn:  # enough pages that one in the middle can be damaged
        conn.exec_driver_sql("CREATE TABLE filler (x TEXT)")
        conn.exec_driver_sql(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2000)"
            " INSERT INTO filler SELECT printf('%0500d', i) FROM n"
        )
    engine.dispose()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    return path


def _damage_header(path: Path) -> None:
    with path.open("r+b") as f:
        f.write(b"this is not a database at all..")


def _truncate(path: Path) -> None:
    with path.open("r+b") as f:
        f.truncate(path.stat().st_size // 3 + 100)


def _damage_middle(path: Path) -> None:
    pages = path.stat().st_size // 4096
    with path.open("r+b") as f:
        f.seek(4096 * (pages // 2))
        f.write(bytes(range(256)) * 16)


@pytest.mark.parametrize("damage", [_damage_header, _truncate, _damage_middle], ids=["header", "truncated", "page"])
def test_run_on_a_damaged_database_stops_with_one_clear_line(tmp_path: Path, damage: object) -> None:
    path = _database(tmp_path)
    damage(path)  # type: ignore[operator]
    out = _cli(tmp_path, "run")
    assert out.returncode == 1
    lines = [line for line in out.stderr.splitlines() if line.startswith("run: ")]
    assert len(lines) == 1, out.stderr[-3000:]
    assert str(path) in lines[0] and ("restore" in lines[0] or "not a SQLite database" in lines[0])
    assert "Traceback" not in out.stderr


def test_report_leaves_the_database_as_it_found_it(tmp_path: Path) -> None:
    path = _database(tmp_path)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=DELETE")  # every connection of the old report switched it back to WAL
    conn.close()
    before = path.read_bytes()
    out = _cli(tmp_path, "report", "--format", "json")
    assert out.returncode == 0, out.stderr
    assert path.read_bytes() == before
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    conn.close()
