"""Engine factory: SQLite in WAL mode with foreign keys on, or any other SQLAlchemy URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, insert, select
from sqlalchemy.engine import make_url

from core.clock import Clock, SystemClock
from storage.schema import SCHEMA_VERSION, metadata, schema_version


class SchemaVersionError(RuntimeError):
    """The database was written by a newer (or unknown) version of perp-farmer."""


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    # Foreign keys are per connection and off by default in SQLite; WAL lets readers run beside the writer;
    # NORMAL sync is safe under WAL (a power cut may lose the last commits, never corrupts).
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An Engine for `url`; for a SQLite file, its directory is created and the pragmas set per connection."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


def create_schema(engine: Engine, clock: Clock | None = None) -> None:
    """Create missing tables and record the schema version; a second call on the same database is a no-op."""
    clock = clock or SystemClock()
    metadata.create_all(engine)
    with engine.begin() as conn:
        versions = conn.execute(select(schema_version.c.version)).scalars().all()
        if not versions:
            conn.execute(insert(schema_version).values(version=SCHEMA_VERSION, applied_at=clock.now()))
        elif max(versions) > SCHEMA_VERSION:
            raise SchemaVersionError(
                f"database schema version {max(versions)} is newer than this program's {SCHEMA_VERSION}"
            )


def open_database(url: str, clock: Clock | None = None) -> Engine:
    """make_engine() + create_schema(): what the supervisor calls once at start."""
    engine = make_engine(url)
    create_schema(engine, clock)
    return engine
