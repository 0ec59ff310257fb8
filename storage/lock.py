"""One supervisor per data dir (and per PostgreSQL database): two engines trading the same accounts from the
same records would each think the other's orders unknown. The lock is an OS lock on a file in the data dir,
released by the kernel when the process dies (even by kill -9), so it never goes stale."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

LOCK_NAME = "supervisor.lock"


class InstanceLockedError(RuntimeError):
    """Another live process holds the lock; the message names it."""


class InstanceLock:
    """An exclusive, non-blocking flock on `<data dir>/supervisor.lock`, holding the owner's pid."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_NAME
        self._file: IO[str] | None = None

    def acquire(self) -> InstanceLock:
        """Take the lock or raise InstanceLockedError naming the holder."""
        handle = self.path.open("a+", encoding="ascii")
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            handle.close()
            raise InstanceLockedError(
                f"another supervisor (pid {holder}) is already running on data dir {self.path.parent}; "
                "stop it first, or give this one its own --data-dir"
            ) from None
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
