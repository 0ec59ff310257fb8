"""A worker as an operating-system process: spawned from an argv in a session of its own, signalled as a group.

Its own session (and so its own process group) because the supervisor alone decides when a worker stops: a
Ctrl-C in the terminal reaches the supervisor only, which then stops the workers in order; and a signal to
one worker's group (kill -9 of a silent one) can reach nothing of its siblings'.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

WORKERS_DIR = "workers"  # under the data dir: the workers' control sockets


def worker_address(data_dir: Path, account: str) -> str:
    """The control socket a worker serves on: `ipc://<data_dir>/workers/<account>.ipc`."""
    return f"ipc://{data_dir / WORKERS_DIR / account}.ipc"


def worker_argv(config: Path | None, data_dir: Path, account: str, holder: str) -> list[str]:
    """The command line of the engine worker for one account (fleet/worker.py)."""
    argv = [sys.executable, "-m", "fleet.worker"]
    if config is not None:
        argv += ["--config", str(config)]
    return [*argv, "--data-dir", str(data_dir), "--account", account, "--holder", holder]


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """One worker to run: its account, its command line, the control address it serves, its environment (None:
    the supervisor's own)."""

    account: str
    argv: Sequence[str]
    address: str
    env: Mapping[str, str] | None = field(default=None, repr=False)  # may hold secrets: kept out of logs


class WorkerProcess:
    """One run of a worker: spawned once, signalled and reaped by its owner (one thread: the supervisor's)."""

    def __init__(self, spec: WorkerSpec) -> None:
        self.spec = spec
        self._popen: subprocess.Popen[bytes] | None = None

    def start(self) -> int:
        """Spawn it (stdout and stderr are the supervisor's, stdin is closed); its pid. OSError when it cannot."""
        self._popen = subprocess.Popen(  # noqa: S603 - the argv is ours, not a shell string
            list(self.spec.argv),
            stdin=subprocess.DEVNULL,
            env=None if self.spec.env is None else dict(self.spec.env),
            start_new_session=True,
        )
        return self._popen.pid

    @property
    def pid(self) -> int | None:
        """Its pid (None before start)."""
        return None if self._popen is None else self._popen.pid

    def poll(self) -> int | None:
        """Its exit status once it has ended (reaping it), else None; a negative status is the killing signal."""
        return None if self._popen is None else self._popen.poll()

    def signal(self, sig: signal.Signals) -> bool:
        """Send `sig` to its process group; False when it has already been reaped (its pid may be another's)."""
        if self._popen is None or self._popen.returncode is not None:
            return False
        # Not yet reaped, so the pid (and the group named after it) is still ours even if it has just died.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._popen.pid, sig)
            return True
        return False

    def terminate(self) -> bool:
        """Ask it to stop (SIGTERM): it stops its engine and exits."""
        return self.signal(signal.SIGTERM)

    def kill(self) -> bool:
        """End it now (SIGKILL), with anything it started."""
        return self.signal(signal.SIGKILL)

    def wait(self, timeout_s: float) -> int | None:
        """Wait up to `timeout_s` for it to end; its exit status, or None if it is still running."""
        if self._popen is None:
            return None
        try:
            return self._popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return None
