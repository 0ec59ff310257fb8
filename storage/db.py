"""Engine factory: SQLite in WAL mode with foreign keys on and synchronous=FULL, or any other SQLAlchemy URL;
and a read-only engine for `report`."""

from __future__ import annotations

import logging
import sqlite3
import threading
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, insert, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from core.clock import Clock, SystemClock
from core.ids import new_namespace
from storage.checks import DatabaseProblem, database_label, sqlite_file
from storage.migrations.runner import SchemaVersionError, current_revisions, newest_fence, refuse_newer, upgrade_to_head
from storage.schema import CLIENT_ID_NAMESPACE_KEY, meta, schema_version

__all__ = ["SchemaVersionError"]  # callers catch it from here, where the openers that raise it live

log = logging.getLogger(__name__)

CHECKPOINT_EVERY_S = 2.0
BUSY_TIMEOUT_MS = 30_000  # how long a write waits for another connection's (or process's) to end


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, *, manual_checkpoints: bool = False) -> None:
    cursor = dbapi_connection.cursor()
    # Foreign keys are per connection and off by default in SQLite; WAL lets readers run beside the writer.
    # FULL syncs the WAL at every commit: under NORMAL a power cut can lose the last commits, and with them the
    # intent rows (client ids) of orders already sent, which reconciliation then cannot look up.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    # Writers take turns on one lock: a fleet's workers (one process per account) share the file, and each
    # commit's fsync (synchronous=FULL) holds the lock a few ms; fifty starting at once queued past 5 s here.
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA synchronous=FULL")
    if manual_checkpoints:  # a Checkpointer thread does them, so no commit ever pays for one
        cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()


def is_sqlite_file(engine: Engine) -> bool:
    """True for a SQLite database on disk (WAL applies)."""
    return engine.url.get_backend_name() == "sqlite" and engine.url.database not in (None, "", ":memory:")


def make_engine(url: str, *, manual_checkpoints: bool = False) -> Engine:
    """An Engine for `url`; for a SQLite file, its directory is created and the pragmas set per connection.
    `manual_checkpoints`: the caller runs a Checkpointer (SQLite's automatic WAL checkpoints are turned off)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        target = sqlite_file(url)  # the real path, also for the `file:...?uri=true` form
        if target is not None:
            target.path.parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
        event.listen(engine, "connect", partial(_sqlite_pragmas, manual_checkpoints=manual_checkpoints))
        return engine
    return create_engine(url, pool_pre_ping=True)


class Checkpointer:
    """Copies the SQLite WAL into the database from its own thread. Left to SQLite, the checkpoint (and its
    fsync) runs inside whichever commit crosses 1000 pages, adding about 4 ms to that one write, which may
    be the write an order waits for. PASSIVE never blocks the writer."""

    def __init__(self, engine: Engine, every_s: float = CHECKPOINT_EVERY_S) -> None:
        self.engine = engine
        self.every_s = every_s
        self.done = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="db-checkpoint", daemon=True)

    def start(self) -> Checkpointer:
        """Checkpoint every `every_s` seconds until stopped."""
        self._thread.start()
        return self

    def checkpoint(self) -> None:
        """One PASSIVE checkpoint now."""
        with self.engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        self.done += 1

    def stop(self) -> None:
        """Stop the thread after a last checkpoint."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(10)
        self.checkpoint()

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.checkpoint()
            except SQLAlchemyError as exc:  # busy or a disk problem: the next round tries again
                log.warning("WAL checkpoint failed: %s", exc)


def create_schema(engine: Engine, clock: Clock | None = None) -> None:
    """Bring the database to the newest schema revision (creating it if new; storage/migrations) and draw the
    client-id namespace; a second call on the same database changes nothing. SchemaVersionError when the
    database is newer than this program."""
    upgrade_to_head(engine, (clock or SystemClock()).now())
    _draw_client_id_namespace(engine)


def _draw_client_id_namespace(engine: Engine) -> None:
    """Store a namespace for the client ids of this database's orders unless it has one: here, before any
    order can be minted (a database made before namespaces existed gets one now). A read-only reader never
    comes here, so it never writes one."""
    with engine.connect() as conn:
        if conn.execute(select(meta.c.value).where(meta.c.key == CLIENT_ID_NAMESPACE_KEY)).scalar() is not None:
            return
    try:
        with engine.begin() as conn:
            conn.execute(insert(meta), {"key": CLIENT_ID_NAMESPACE_KEY, "value": new_namespace()})
    except IntegrityError:
        pass  # another process opening the same database drew one first: theirs stands


def open_database(url: str, clock: Clock | None = None, *, manual_checkpoints: bool = False) -> Engine:
    """make_engine() + create_schema(): what the supervisor calls once at start (and the one place, with the
    schema, where the client-id namespace is drawn)."""
    engine = make_engine(url, manual_checkpoints=manual_checkpoints)
    create_schema(engine, clock)
    return engine


def open_database_readonly(url: str) -> Engine:
    """An Engine that only reads `url` (for `report`): SQLite opens with mode=ro and no pragma, so nothing in the
    file changes. Raises DatabaseProblem (one line) when the file is missing, unreadable or not ours."""
    target = sqlite_file(url)
    if target is None:
        engine = create_engine(url, pool_pre_ping=True)
    else:
        where = str(target.path)
        if not target.path.is_file():
            raise DatabaseProblem(where, "does not exist", "check data_dir (or database.url)")
        uri = _readonly_uri(target.uri(mode="ro"), target.uri(mode="ro", immutable="1"), where)
        engine = create_engine(make_url(url).set(query={}), creator=partial(_connect_readonly, uri))
    try:
        _check_readable(engine, url)
    except BaseException:
        engine.dispose()
        raise
    return engine


def _check_readable(engine: Engine, url: str) -> None:
    """DatabaseProblem unless `engine` reads a perp-farmer database; SchemaVersionError if a newer one wrote it.
    A database behind head is read as it is: a reader must not upgrade it."""
    try:
        with engine.connect() as conn:
            ours = inspect(conn).has_table(schema_version.name)
            fence = newest_fence(conn)
            revisions = current_revisions(conn)
    except SQLAlchemyError as exc:
        raise DatabaseProblem.from_error(exc, database_label(url)) from exc
    if not ours:
        raise DatabaseProblem(database_label(url), "holds no perp-farmer tables", "check data_dir (or database.url)")
    refuse_newer(revisions, fence)


def _connect_readonly(uri: str) -> sqlite3.Connection:
    # No pragma here: even `journal_mode` would try to write. The busy timeout is the driver's own handler.
    return sqlite3.connect(uri, uri=True, check_same_thread=False, timeout=5.0)


def _readonly_uri(readonly: str, immutable: str, where: str) -> str:
    """`readonly`, or `immutable` when only a directory this user cannot write keeps mode=ro from working."""
    # A WAL database's reader needs the -wal and -shm files. In a writable directory SQLite creates them if they
    # are missing (and, being read-only, leaves them: harmless, the next writer uses them). In a directory this
    # user cannot write (measured: SQLITE_READONLY_DIRECTORY), mode=ro still works while both exist, i.e. while
    # the supervisor runs. When neither exists, a clean stop has folded the WAL into the file, which is then
    # complete and read `immutable=1` (no locks, no -shm); only a supervisor starting during that read could
    # disturb it (an error, or figures mixing before and after: run the report again). A -wal left without its
    # -shm would be ignored by immutable=1 (its commits missing from the report), so that case is refused.
    try:
        conn = _connect_readonly(readonly)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.Error as exc:
        name = getattr(exc, "sqlite_errorname", "")
        if name not in {"SQLITE_READONLY_DIRECTORY", "SQLITE_CANTOPEN"}:
            raise DatabaseProblem.from_error(exc, where) from exc
        if Path(f"{where}-wal").exists():
            raise DatabaseProblem(
                where,
                "its -wal file holds commits, and reading them needs a -shm file this user cannot create",
                "run report as the user that runs perp-farmer (or once that one has stopped cleanly)",
            ) from exc
        return immutable
    return readonly
