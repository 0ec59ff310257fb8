"""One supervisor per data dir (and per PostgreSQL database): two engines trading the same accounts from the
same records would each think the other's orders unknown. The data-dir lock is an OS lock on a file, released
by the kernel when the process dies (even by kill -9); the database lock is a PostgreSQL session advisory lock,
released by the server when the holding connection ends. Neither can go stale.

Fleet supervisors (several accounts, storage/leases.py) on several hosts may share one PostgreSQL database: each
takes the advisory lock in shared mode, so they run side by side (the account leases decide who trades what),
while a single-engine supervisor, which takes it exclusive and trades without a lease, excludes them all and is
excluded by any one of them."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url

from storage.checks import sqlite_file

LOCK_NAME = "supervisor.lock"
# The advisory-lock key (a bigint) every perp-farmer supervisor takes on its database: b"perpfarm" as an integer.
ADVISORY_KEY = int.from_bytes(b"perpfarm", "big") - (1 << 63)


class InstanceLockedError(RuntimeError):
    """Another live process holds the lock; the message names it."""


class InstanceLock:
    """A non-blocking flock on `<data dir>/supervisor.lock`, holding the owner's pid: exclusive, or `shared`
    among fleet supervisors (whose accounts' leases keep them apart)."""

    def __init__(
        self, data_dir: Path, *, path: Path | None = None, what: str | None = None, shared: bool = False
    ) -> None:
        self.path = path or data_dir / LOCK_NAME
        self._what = what or f"data dir {data_dir}"
        self._shared = shared
        self._file: IO[str] | None = None

    @classmethod
    def beside(cls, database: Path, *, shared: bool = False) -> InstanceLock:
        """The lock for a SQLite file: `<file>.lock` next to it, so two data dirs cannot share one database
        (unless both are fleets', `shared`)."""
        where = database.with_name(database.name + ".lock")
        return cls(database.parent, path=where, what=f"database {database}", shared=shared)

    def acquire(self) -> InstanceLock:
        """Take the lock or raise InstanceLockedError naming the holder."""
        handle = self.path.open("a+", encoding="ascii")
        try:
            fcntl.flock(handle.fileno(), (fcntl.LOCK_SH if self._shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            if self._shared:
                raise InstanceLockedError(
                    f"a supervisor that is not a fleet's (pid {holder}) is running on {self._what}; stop it first: "
                    "fleet supervisors share a database with one another only"
                ) from None
            raise InstanceLockedError(
                f"another supervisor (pid {holder}) is already running on {self._what}; "
                "stop it first, or give this one its own --data-dir (and database)"
            ) from None
        if self._shared:  # the others hold it too: the file keeps the first one's pid
            self._file = handle
            return self
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        self._file = handle
        return self

    def release(self) -> None:
        """Give the lock back (the kernel does it too when the process ends)."""
        if self._file is not None:
            fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None


class DatabaseLock:
    """A session advisory lock on a PostgreSQL database, held on a connection of its own for the life of
    the process: exclusive, or with `fleet` shared among fleet supervisors; for a SQLite file, a file lock beside
    it, exclusive or shared the same way (fleet supervisors on one host may share one file)."""

    def __init__(self, url: str, *, fleet: bool = False) -> None:
        self.url = url
        self.fleet = fleet
        self._engine: Engine | None = None
        self._conn: Connection | None = None
        self._file_lock: InstanceLock | None = None

    @staticmethod
    def applies_to(url: str) -> bool:
        """True for a PostgreSQL URL."""
        return make_url(url).get_backend_name() == "postgresql"

    def acquire(self) -> DatabaseLock:
        """Take the lock or raise InstanceLockedError: a file lock beside a SQLite file, an advisory lock on
        PostgreSQL, nothing for an in-memory database."""
        if not self.applies_to(self.url):
            target = sqlite_file(self.url)
            if target is not None:
                target.path.parent.mkdir(parents=True, exist_ok=True)
                self._file_lock = InstanceLock.beside(target.path, shared=self.fleet).acquire()
            return self
        engine = create_engine(self.url)
        conn = engine.connect()
        take = "pg_try_advisory_lock_shared" if self.fleet else "pg_try_advisory_lock"
        taken = conn.execute(text(f"SELECT {take}(:key)"), {"key": ADVISORY_KEY}).scalar()
        conn.commit()
        if not taken:
            holder = conn.execute(
                text(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                    " AND classid = :high AND objid = :low"
                ),
                {"high": (ADVISORY_KEY >> 32) & 0xFFFFFFFF, "low": ADVISORY_KEY & 0xFFFFFFFF},
            ).scalar()
            conn.close()
            engine.dispose()
            where = make_url(self.url).render_as_string(hide_password=True)
            if self.fleet:
                raise InstanceLockedError(
                    f"a supervisor that is not a fleet's (server pid {holder}) is running on database {where}; "
                    "stop it first: fleet supervisors share a database with one another only"
                )
            raise InstanceLockedError(
                f"another supervisor (server pid {holder}) is already running on database {where}; "
                "stop it first, or give this one its own database"
            )
        self._engine, self._conn = engine, conn
        return self

    def release(self) -> None:
        """Unlock and close the connection (the server unlocks on its own if the process dies)."""
        if self._file_lock is not None:
            self._file_lock.release()
            self._file_lock = None
        if self._conn is not None:
            self._conn.close()  # ending the session releases a session-level advisory lock
            self._conn = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None
