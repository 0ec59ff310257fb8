"""Brings a database to the newest schema revision when perp-farmer opens it, and refuses one written by a newer
perp-farmer.

Alembic's `alembic_version` table is the record of which revision a database is at. The older
`schema_version` table is kept, and its newest number is kept equal to the count of revisions applied
(SCHEMA_VERSION at head): the perp-farmer releases made before Alembic read only that table, and refuse a
database whose number is above theirs. Dropping the table would not fence them off: they would create it
again, empty, and run on a schema they do not know. So a new revision means SCHEMA_VERSION + 1
(tests/unit/test_migrations.py checks the two agree).
"""

from __future__ import annotations

import logging
from datetime import datetime
from functools import cache

from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, func, insert, inspect, select

from storage.schema import SCHEMA_VERSION, metadata, schema_version

log = logging.getLogger(__name__)

SCRIPT_LOCATION = "storage:migrations"
# The schema_version number a database made before Alembic has: revision 0001 adopts such a database.
BEFORE_ALEMBIC = 1


class SchemaVersionError(RuntimeError):
    """The database was written by a newer (or unknown) version of perp-farmer."""


def alembic_config(connection: Connection | None = None) -> Config:
    """Alembic's configuration without an alembic.ini: the script location, and the connection to run on."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@cache
def scripts() -> ScriptDirectory:
    """The revisions this program knows (read once per process)."""
    return ScriptDirectory.from_config(alembic_config())


@cache
def known_revisions() -> frozenset[str]:
    """Every revision id in storage/migrations/versions."""
    return frozenset(script.revision for script in scripts().walk_revisions())


def head() -> str:
    """The newest revision."""
    found = scripts().get_current_head()
    if found is None:
        raise RuntimeError("storage/migrations/versions holds no revision")
    return found


def current_revisions(conn: Connection) -> tuple[str, ...]:
    """The revisions recorded in the database's alembic_version table (empty when it has none). Only reads."""
    return MigrationContext.configure(conn).get_current_heads()


def newest_fence(conn: Connection) -> int | None:
    """The highest number in schema_version, or None when the database has no such table (or no row)."""
    if not inspect(conn).has_table(schema_version.name):
        return None
    newest = conn.execute(select(func.max(schema_version.c.version))).scalar()
    return None if newest is None else int(newest)


def refuse_newer(revisions: tuple[str, ...], fence: int | None) -> None:
    """Raise SchemaVersionError (one line) when the database is past what this program knows."""
    unknown = sorted(set(revisions) - known_revisions())
    if unknown:
        raise SchemaVersionError(
            f"database schema revision {', '.join(unknown)} is newer than this program's {head()}: it was written by "
            "a newer perp-farmer; run that version (or restore a backup taken before it ran)"
        )
    if fence is not None and fence > SCHEMA_VERSION:
        raise SchemaVersionError(f"database schema version {fence} is newer than this program's {SCHEMA_VERSION}")


def upgrade_to_head(engine: Engine, now: datetime) -> None:
    """Create a new database at head, adopt one made before Alembic, upgrade an older one; each in one transaction."""
    with engine.begin() as conn:
        fence = newest_fence(conn)
        revisions = current_revisions(conn)
        refuse_newer(revisions, fence)
        if revisions == (head(),):
            return
        if not revisions and fence is None:
            # A new database: the tables as the program defines them, recorded at head. Alembic's advice for a
            # fresh database, and much cheaper than replaying every revision (the tests open hundreds).
            metadata.create_all(conn)
            MigrationContext.configure(conn).stamp(scripts(), "head")
            _record_fence(conn, fence, now)
            return
        if not revisions and fence is not None and fence > BEFORE_ALEMBIC:
            raise SchemaVersionError(
                f"database schema version {fence} has no alembic_version record: this program cannot tell which "
                "revision it is at; restore a backup"
            )
    _upgrade(engine, now)


def _upgrade(engine: Engine, now: datetime) -> None:
    from alembic import command  # noqa: PLC0415  (only a database behind head pays for importing it)

    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as conn:
        if sqlite:
            # On SQLite a revision that changes a table copies it to a new one and drops the old: with foreign keys
            # on, dropping a table other rows point at fails. They are off for the upgrade (the pragma is ignored
            # inside a transaction, so before BEGIN) and checked as a whole before the commit. BEGIN IMMEDIATE
            # makes the driver keep every statement, DDL too, in this one transaction.
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        try:
            fence = newest_fence(conn)
            revisions = current_revisions(conn)
            refuse_newer(revisions, fence)  # again, now that the database is ours to change
            log.info("upgrading the database schema from %s to %s", ", ".join(revisions) or "before Alembic", head())
            command.upgrade(alembic_config(conn), "head")
            _record_fence(conn, fence, now)
            if sqlite and (broken := conn.exec_driver_sql("PRAGMA foreign_key_check").fetchall()):
                raise RuntimeError(f"the schema upgrade would leave rows pointing at nothing: {broken[:5]}")
            conn.commit()
        finally:
            conn.rollback()  # after a commit, a no-op
            if sqlite:
                conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                conn.commit()


def _record_fence(conn: Connection, fence: int | None, now: datetime) -> None:
    if fence is None or fence < SCHEMA_VERSION:
        conn.execute(insert(schema_version).values(version=SCHEMA_VERSION, applied_at=now))
