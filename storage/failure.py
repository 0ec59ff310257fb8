"""Which database errors mean the store itself is failing (full disk, read-only file, I/O error, corruption), so
that the runtime stops instead of trading blind, as opposed to a refused statement (a constraint, a bug) or a
passing condition (a lock held a little too long), which must not end the process."""

from __future__ import annotations

import sqlite3

from sqlalchemy.exc import DBAPIError

from storage.checks import DatabaseProblem

# SQLite's own names for a store that will not recover by itself. BUSY and LOCKED (another connection held the
# lock past the busy timeout) pass; SQLITE_ERROR is a statement's fault (a bug), not the store's.
_FATAL_PREFIXES = (
    "SQLITE_FULL",
    "SQLITE_READONLY",
    "SQLITE_IOERR",
    "SQLITE_CORRUPT",
    "SQLITE_NOTADB",
    "SQLITE_CANTOPEN",
)


def _sqlite_error(exc: BaseException) -> sqlite3.Error | None:
    """The sqlite3 error behind `exc` (SQLAlchemy's wrapper, or a DatabaseProblem's cause), if there is one."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, sqlite3.Error):
            return seen
        if isinstance(seen, DBAPIError) and isinstance(seen.orig, sqlite3.Error):
            return seen.orig
        seen = seen.__cause__
    return None


def is_storage_failure(exc: BaseException) -> bool:
    """True when `exc` says the database cannot be written or read reliably any more."""
    error = _sqlite_error(exc)
    if error is not None:
        name = getattr(error, "sqlite_errorname", "")
        return name.startswith(_FATAL_PREFIXES)
    # A start-up or probe finding with no driver error behind it (quick_check found damage) is final too.
    return isinstance(exc, DatabaseProblem)
