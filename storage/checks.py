"""Database checks at start and from the health check, and storage errors told in one line.

A disk problem should read as what is wrong and what to do, naming the file, never as a SQLAlchemy traceback.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

from sqlalchemy import Engine, create_engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError, SQLAlchemyError

# Query keys SQLAlchemy's pysqlite dialect consumes itself; the rest of a `uri=true` URL goes to SQLite.
_SQLALCHEMY_SQLITE_KEYS = frozenset({"uri", "timeout", "check_same_thread", "isolation_level", "detect_types"})
# A write probe must find room for this much in the file, so a database at its size limit fails the probe
# and not the next order's intent row.
PROBE_HEADROOM_BYTES = 16 * 1024
_BUSY_TIMEOUT_S = 5.0

_RESTORE = (
    "stop perp-farmer, move the file (with its -wal and -shm) aside and restore the latest backup, or start on an "
    "empty database and let reconciliation find the venues' positions (reported as unknown positions)"
)


class DatabaseProblem(RuntimeError):  # noqa: N818 - the name the start-up code and the issue use
    """The database cannot be used as it is; str() is one line naming the file, the problem and the fix."""

    def __init__(self, path: str, problem: str, fix: str) -> None:
        super().__init__(f"database {path}: {problem}; {fix}")
        self.path = path
        self.problem = problem
        self.fix = fix

    @classmethod
    def from_error(cls, exc: BaseException, path: str) -> DatabaseProblem:
        """The problem behind a storage error raised while using the database at `path`."""
        if isinstance(exc, DatabaseProblem):
            return exc
        problem, fix = _classify(exc)
        return cls(path, problem, fix)


@dataclass(frozen=True, slots=True)
class SqliteFile:
    """A SQLite database on disk: its path and the URI sqlite3 opens it with (URL options kept, e.g. mode=ro)."""

    path: Path
    options: dict[str, str]

    def uri(self, **options: str) -> str:
        """A `file:` URI for sqlite3.connect(..., uri=True); `options` override the URL's."""
        query = urlencode({**self.options, **options})
        return f"file:{quote(str(self.path.absolute()))}" + (f"?{query}" if query else "")


def sqlite_file(url: str) -> SqliteFile | None:
    """The file behind a SQLite URL; None for another backend or an in-memory database."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    database = str(parsed.database)
    options: dict[str, str] = {}
    if parsed.query.get("uri") == "true" and database.startswith("file:"):
        # SQLAlchemy's URI form, e.g. sqlite:///file:/data/x.db?mode=ro&uri=true
        database = database.removeprefix("file:")
        options = {k: str(v) for k, v in parsed.query.items() if k not in _SQLALCHEMY_SQLITE_KEYS}
        if options.get("mode") == "memory":
            return None
    return SqliteFile(Path(database), options)


def database_label(url: str) -> str:
    """How messages name the database at `url`: its file, or the URL without its password."""
    target = sqlite_file(url)
    return str(target.path) if target else make_url(url).render_as_string(hide_password=True)


def check_database(url: str) -> None:
    """Raise DatabaseProblem unless the database at `url` can be opened, read and written; for the supervisor to
    call first, before anything else opens it. A SQLite file must also pass PRAGMA quick_check."""
    # quick_check reads every page once (0.06 s for 29 MB here) and finds what no small read would: a damaged
    # page mid-file. A missing file is fine if its directory can be written: open_database creates it. Another
    # backend gets a connection and a round trip.
    try:
        target = sqlite_file(url)
    except ArgumentError as exc:
        raise DatabaseProblem(repr(url), "is not a database URL", "fix database.url") from exc
    if target is None:
        if make_url(url).get_backend_name() != "sqlite":
            _check_connect(url)
        return
    where = str(target.path)
    directory = target.path.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseProblem(
            where,
            f"cannot create its directory {directory} ({exc.strerror or exc})",
            "fix data_dir (or database.url) or the permissions of the directory above it",
        ) from exc
    _probe_directory(directory, where)
    if not target.path.exists():
        return  # a new database: open_database creates it
    if not target.path.is_file():
        raise DatabaseProblem(where, "is not a regular file", "fix data_dir (or database.url)")
    try:
        # mode=rw: a check never creates the file (a URL's own mode, e.g. ro, is kept)
        uri = target.uri(mode=target.options.get("mode", "rw"))
        conn = sqlite3.connect(uri, uri=True, timeout=_BUSY_TIMEOUT_S)
    except sqlite3.Error as exc:
        raise DatabaseProblem.from_error(exc, where) from exc
    try:
        conn.isolation_level = None  # the probe runs its own BEGIN IMMEDIATE
        rows = [str(r[0]) for r in conn.execute("PRAGMA quick_check")]
        if rows != ["ok"]:
            first = " ".join(" ".join(rows).split())  # quick_check's lines, on one
            raise DatabaseProblem(where, f"is corrupt (quick_check: {first[:200]})", _RESTORE)
        _probe(conn)
    except sqlite3.Error as exc:
        raise DatabaseProblem.from_error(exc, where) from exc
    finally:
        conn.close()


def probe_write(engine: Engine) -> None:
    """Prove the database still takes a committed, synced write and has room to grow, else raise DatabaseProblem
    (for the health check; on another backend, a round trip only)."""
    # It holds SQLite's write lock for one small synced commit (~1 ms here), so run it at the health check's pace.
    where = database_label(engine.url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            if isinstance(raw, sqlite3.Connection):
                previous = raw.isolation_level
                raw.isolation_level = None  # manual BEGIN IMMEDIATE; SQLAlchemy began nothing on this connection
                try:
                    _probe(raw)
                finally:
                    raw.isolation_level = previous
            else:
                conn.exec_driver_sql("SELECT 1")
    except (SQLAlchemyError, sqlite3.Error, OSError) as exc:
        raise DatabaseProblem.from_error(exc, where) from exc


def describe_storage_error(exc: BaseException, path: str | None = None) -> str:
    """One line for a storage error (what is wrong, what to do), without the SQL statement or traceback."""
    if isinstance(exc, DatabaseProblem):
        return str(exc)
    problem, fix = _classify(exc)
    return f"database {path}: {problem}; {fix}" if path else f"database: {problem}; {fix}"


def _probe(conn: sqlite3.Connection) -> None:
    """BEGIN IMMEDIATE, allocate pages in a savepoint that is rolled back, then commit a header write."""
    # A same-value `PRAGMA user_version` still writes page 1 (measured: one WAL frame, synced at commit), so the
    # commit path and the disk are proven; but it needs no new page, so a full database passes it: hence the
    # savepoint that allocates PROBE_HEADROOM_BYTES first (SQLITE_FULL when there is no room), leaving no trace.
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("SAVEPOINT perp_farmer_probe")
        conn.execute("CREATE TABLE perp_farmer_probe (x BLOB)")
        conn.execute("INSERT INTO perp_farmer_probe VALUES (zeroblob(?))", (PROBE_HEADROOM_BYTES,))
        conn.execute("ROLLBACK TO perp_farmer_probe")
        conn.execute("RELEASE perp_farmer_probe")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        conn.execute(f"PRAGMA user_version = {version}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def _probe_directory(directory: Path, where: str) -> None:
    """Create and delete a file in `directory`: SQLite needs to create the -wal and -shm files there."""
    try:
        fd, name = tempfile.mkstemp(prefix=".perp-farmer-probe-", dir=directory)
        os.close(fd)
        Path(name).unlink()
    except OSError as exc:
        raise DatabaseProblem(
            where,
            f"cannot write in {directory} ({exc.strerror or exc})",
            "give the user running perp-farmer write access to it (owner/permissions) or mount it read-write",
        ) from exc


def _check_connect(url: str) -> None:
    where = make_url(url).render_as_string(hide_password=True)
    try:
        engine = create_engine(url)
    except (NoSuchModuleError, ArgumentError, ImportError) as exc:
        raise DatabaseProblem(
            where, f"no driver for this URL ({exc})", "install its driver or fix database.url"
        ) from exc
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except SQLAlchemyError as exc:
        raise DatabaseProblem.from_error(exc, where) from exc
    finally:
        engine.dispose()


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""


def _classify(exc: BaseException) -> tuple[str, str]:
    """(problem, fix) for a storage error: by SQLite's error name, else the OS errno, else the message."""
    orig: BaseException = exc.orig if isinstance(exc, DBAPIError) and exc.orig is not None else exc
    name = getattr(orig, "sqlite_errorname", "") if isinstance(orig, sqlite3.Error) else ""
    message = _first_line(str(orig))
    if name == "SQLITE_FULL":
        return "the disk (or the database's size limit) is full", "free space on that filesystem, then restart"
    if name == "SQLITE_READONLY_DIRECTORY":
        return (
            "its directory cannot be written (SQLite must create the -wal and -shm files there)",
            "give the user running perp-farmer write access to the directory",
        )
    if name.startswith("SQLITE_READONLY"):
        return (
            f"is read-only ({message})",
            "give the user running perp-farmer write access to the file and its directory, or mount it read-write",
        )
    if name in {"SQLITE_CORRUPT", "SQLITE_NOTADB"} or name.startswith("SQLITE_CORRUPT"):
        what = "is not a SQLite database (bad header)" if name == "SQLITE_NOTADB" else f"is corrupt ({message})"
        return what, _RESTORE
    if name.startswith("SQLITE_IOERR"):
        return f"disk I/O error ({name})", "check the disk and filesystem (dmesg, free space), then restart"
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return (
            "stayed locked past the 5 s busy timeout",
            "stop whatever else holds it (a second perp-farmer, a sqlite3 shell, a backup tool)",
        )
    if name.startswith("SQLITE_CANTOPEN"):
        return "cannot be opened", "check that the path exists and the user running perp-farmer may read and write it"
    if isinstance(orig, OSError) and orig.errno is not None:
        if orig.errno == errno.ENOSPC:
            return "the disk is full", "free space on that filesystem, then restart"
        if orig.errno in {errno.EROFS, errno.EACCES, errno.EPERM}:
            return f"cannot be written ({orig.strerror})", "fix the permissions or mount the filesystem read-write"
        return f"{orig.strerror or message}", "check the path and the disk"
    return f"{type(orig).__name__}: {message}", "see the log for details"
