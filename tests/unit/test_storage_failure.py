"""Which database errors end the process: real SQLite errors, raised through SQLAlchemy as the writer meets them."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import create_engine, event, text
from sqlalchemy.exc import SQLAlchemyError

from storage.checks import DatabaseProblem
from storage.failure import is_storage_failure


def _error(tmp_path: Path, statement: str, *, cap_pages: bool = False, hold_lock: bool = False) -> SQLAlchemyError:
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / "x.db"
    setup = sqlite3.connect(path)
    setup.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)")
    setup.execute("INSERT INTO t VALUES (1, 'a')")
    setup.commit()
    setup.close()
    engine = create_engine(f"sqlite:///{path}", connect_args={"timeout": 0.05})
    if cap_pages:
        event.listen(engine, "connect", lambda conn, _r: conn.execute("PRAGMA max_page_count = 2"))
    holder = sqlite3.connect(path)
    if hold_lock:
        holder.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(SQLAlchemyError) as caught, engine.begin() as conn:
            conn.execute(text(statement))
    finally:
        holder.close()
        engine.dispose()
    return caught.value


def test_a_full_database_is_a_storage_failure(tmp_path: Path) -> None:
    exc = _error(tmp_path, "INSERT INTO t (v) SELECT printf('%.5000d', 1) FROM t", cap_pages=True)
    assert "full" in str(exc) and is_storage_failure(exc)


def test_a_lock_held_past_the_busy_timeout_passes(tmp_path: Path) -> None:
    exc = _error(tmp_path, "INSERT INTO t (v) VALUES ('b')", hold_lock=True)
    assert "locked" in str(exc) and not is_storage_failure(exc)


def test_a_statement_bug_or_a_constraint_is_not_the_store_failing(tmp_path: Path) -> None:
    assert not is_storage_failure(_error(tmp_path / "a", "SELECT no_such_column FROM t"))
    assert not is_storage_failure(_error(tmp_path / "b", "INSERT INTO t VALUES (1, 'dup')"))


def test_a_start_up_finding_is_final_and_a_wrapped_cause_is_judged_by_its_code(tmp_path: Path) -> None:
    assert is_storage_failure(DatabaseProblem("x.db", "is corrupt", "restore"))
    busy = _error(tmp_path, "INSERT INTO t (v) VALUES ('b')", hold_lock=True)
    try:
        raise DatabaseProblem("x.db", "locked", "wait") from busy
    except DatabaseProblem as wrapped:
        assert not is_storage_failure(wrapped)
