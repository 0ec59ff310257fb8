"""The fleet's paper venues: the paper host process (exchanges/paper_host.py) serving every paper account.

A supervisor uses the host already serving `paper.host_dir` (another supervisor's, or one started on its own as
a stand-in for the venues), or starts one there, owns it, restarts it if it dies and stops it at the end.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from core.config import Settings
from exchanges.paper_host import EXIT_BUSY, HOST_FILE, read_host_file

log = logging.getLogger(__name__)

START_DEADLINE_S = 60.0
POLL_S = 0.05
STOP_WAIT_S = 20.0


class PaperHostError(RuntimeError):
    """The paper host could not be started or reached; the message says why."""


def host_dir(settings: Settings) -> Path:
    """Where the fleet's paper host runs: `paper.host_dir`, else the data dir."""
    return settings.paper.host_dir or settings.data_dir


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive, and not ours to signal
        return True
    return True


def serving(directory: Path) -> dict[str, Any] | None:
    """The host file of a paper host alive in `directory`, or None (no file, or its process is gone)."""
    found = read_host_file(directory)
    if found is None or not _alive(int(found.get("pid", 0))):
        return None
    return found


class PaperHostLink:
    """The paper host a fleet trades on; `ensure()` before the workers start, `poll()` every turn, `stop()`."""

    def __init__(self, settings: Settings, config: Path | None) -> None:
        self.directory = host_dir(settings)
        self._config = config
        self._proc: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None

    @property
    def owned(self) -> bool:
        """Whether this supervisor started the host (and so stops it)."""
        return self._proc is not None

    def ensure(self, deadline_s: float = START_DEADLINE_S) -> dict[str, Any]:
        """The serving host's file: the one already there, or that of a host started now. PaperHostError when
        none serves within `deadline_s`."""
        found = serving(self.directory)
        if found is not None:
            self.pid = int(found["pid"])
            log.info("paper host (pid %d) already serving %s: trading on it", self.pid, self.directory)
            return found
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "exchanges.paper_host", "--data-dir", str(self.directory)]
        if self._config is not None:
            argv += ["--config", str(self._config)]
        # Its own session: a Ctrl-C reaches the supervisor, which stops the workers before their venues.
        self._proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, start_new_session=True)  # noqa: S603
        end = time.monotonic() + deadline_s
        while time.monotonic() < end:
            found = serving(self.directory)
            if found is not None and int(found["pid"]) in (self._proc.pid, self._other()):
                self.pid = int(found["pid"])
                if self._proc.poll() is not None:  # another supervisor's host won the race: use it
                    self._proc = None
                log.info("paper host (pid %d) serving %s", self.pid, self.directory)
                return found
            code = self._proc.poll()
            if code is not None and code != EXIT_BUSY:
                self._proc = None
                raise PaperHostError(f"the paper host exited with status {code} (see its log above)")
            time.sleep(POLL_S)
        self.stop()
        raise PaperHostError(f"no paper host served {self.directory / HOST_FILE} within {deadline_s:.0f}s")

    def _other(self) -> int:
        found = read_host_file(self.directory)
        return int(found["pid"]) if found is not None else -1

    def poll(self) -> bool:
        """True when the host had died and a new one now serves (at new URLs: the workers must restart)."""
        if self.pid is not None and _alive(self.pid) and serving(self.directory) is not None:
            return False
        if self._proc is not None and self._proc.poll() is None:
            return False  # still starting
        log.critical("the paper host (pid %s) is gone: starting another", self.pid)
        self._proc = None
        self.ensure()
        return True

    def stop(self) -> None:
        """Stop the host if this supervisor started it (it saves the venues' state first)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(STOP_WAIT_S)
        except subprocess.TimeoutExpired:
            log.error("the paper host did not stop within %.0fs: killed", STOP_WAIT_S)  # noqa: TRY400 - no trace needed
            proc.kill()
            proc.wait(STOP_WAIT_S)
