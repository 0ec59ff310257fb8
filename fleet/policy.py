"""The fleet supervisor's rules as pure functions of monotonic times: when to restart a worker and after how
long, when to give up on it, when to send a heartbeat and when a silent worker is to be killed."""

from __future__ import annotations

import signal
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from actors.supervision import RestartPolicy

EXIT_CONFIG = 2  # the engine's exit status for a bad configuration: restarting it cannot help
EXIT_LEASE = 3  # the account's lease is another holder's: restarting it here cannot help (fleet/run.py lets it go)
FINAL_EXITS = (EXIT_CONFIG, EXIT_LEASE)


class WorkerState(StrEnum):
    """Where a worker process is in its life, as `status` reports it."""

    STARTING = "starting"  # spawned, has not answered a heartbeat yet
    RUNNING = "running"  # answered a heartbeat
    BACKOFF = "backoff"  # died; restarted when its delay has passed
    GIVEN_UP = "given_up"  # died too often (or cannot run at all): not restarted
    STOPPED = "stopped"  # stopped by the supervisor


@dataclass(frozen=True, slots=True)
class Knobs:
    """The supervisor's timings, in seconds (WorkersConfig's, as floats)."""

    heartbeat_interval_s: float = 1.0
    heartbeat_timeout_s: float = 10.0
    max_restarts: int = 5
    restart_window_s: float = 600.0
    backoff_min_s: float = 1.0
    backoff_max_s: float = 60.0
    stop_timeout_s: float = 20.0
    start_timeout_s: float | None = None  # how long a new worker may take to answer; None: heartbeat_timeout_s

    @classmethod
    def from_config(cls, workers: Any) -> Knobs:
        """From the configuration's `[workers]` section (core.config.WorkersConfig)."""
        return cls(
            heartbeat_interval_s=float(workers.heartbeat_interval_s),
            heartbeat_timeout_s=float(workers.heartbeat_timeout_s),
            max_restarts=int(workers.max_restarts),
            restart_window_s=float(workers.restart_window_s),
            backoff_min_s=float(workers.restart_backoff_min_s),
            backoff_max_s=float(workers.restart_backoff_max_s),
            stop_timeout_s=float(workers.stop_timeout_s),
            start_timeout_s=float(workers.start_timeout_s),
        )

    def restart_policy(self) -> RestartPolicy:
        """A worker's own restart policy (the actors' rule: max_restarts in a window, doubling backoff)."""
        return RestartPolicy(self.max_restarts, self.restart_window_s, self.backoff_min_s, self.backoff_max_s)

    @property
    def call_timeout_s(self) -> float:
        """How long one heartbeat waits for its reply: half the deadline, so two tries fit before a kill."""
        return self.heartbeat_timeout_s / 2

    @property
    def start_deadline_s(self) -> float:
        """How long a new worker has to answer its first heartbeat."""
        return self.heartbeat_timeout_s if self.start_timeout_s is None else self.start_timeout_s


def restart_delay(policy: RestartPolicy, now: float, returncode: int | None) -> float | None:
    """Seconds to wait before restarting a worker that died at `now` with `returncode` (None: killed for its
    silence); None to give up on it (too many deaths in the window, or a configuration it cannot run with)."""
    if returncode in FINAL_EXITS:
        return None
    return policy.on_failure(now)


def heartbeat_due(now: float, last_sent_at: float | None, in_flight: bool, interval_s: float) -> bool:
    """Whether to send a heartbeat now: one at a time, every `interval_s`."""
    return not in_flight and (last_sent_at is None or now - last_sent_at >= interval_s)


def silent_for(now: float, started_at: float, last_reply_at: float | None) -> float:
    """How long the worker has not answered: since its last reply, or since it started."""
    return now - (started_at if last_reply_at is None else last_reply_at)


def heartbeat_overdue(now: float, started_at: float, last_reply_at: float | None, knobs: Knobs) -> bool:
    """Whether the worker has been silent too long and is to be killed (a new one gets start_deadline_s)."""
    deadline = knobs.start_deadline_s if last_reply_at is None else knobs.heartbeat_timeout_s
    return silent_for(now, started_at, last_reply_at) > deadline


def describe_exit(returncode: int) -> str:
    """A process's end in words: its exit status, or the signal that ended it."""
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"
