"""storage/db.py and storage/checks.py: durability pragmas, start-up checks, the write probe, read-only report."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from storage.db import make_engine


def _url(path: Path) -> str:
    return f"sqlite:///{path}"


# ---- synchronous=FULL -------------------------------------------------------------------------------------


def test_sqlite_connections_sync_every_commit(tmp_path: Path) -> None:
    engine = make_engine(_url(tmp_path / "x.db"))
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL
    engine.dispose()
