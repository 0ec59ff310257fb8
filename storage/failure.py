"""Which database errors mean the store itself is failing (full disk, read-only file, I/O error, corruption),
as opposed to a refused statement (a constraint), so that the runtime can stop instead of trading blind."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from storage.checks import DatabaseProblem


def is_storage_failure(exc: BaseException) -> bool:
    """True when `exc` says the database cannot be written or read reliably any more."""
    if isinstance(exc, DatabaseProblem):
        return True
    if isinstance(exc, IntegrityError):
        return False  # a state guard or unique index refused one write: the store itself is fine
    if isinstance(exc, OperationalError):
        return True
    # sqlite3.DatabaseError ("file is not a database", "database disk image is malformed") arrives wrapped.
    return isinstance(exc, DBAPIError) and type(exc.orig).__name__ in {"DatabaseError", "OperationalError"}
