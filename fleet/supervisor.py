"""The fleet supervisor: one worker process per account, started together, heartbeated over their control
sockets, restarted alone when one dies or goes silent (with backoff, up to a limit), stopped in reverse order.

`poll()` is one turn and never waits long: heartbeats are sent from a small thread pool and their replies
collected on a later turn. Every decision is a function of fleet/policy.py, on the injected clock.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from actors.supervision import RestartPolicy
from control.client import ControlUnavailableError, call
from fleet.link import HEARTBEAT
from fleet.policy import (
    Knobs,
    WorkerState,
    describe_exit,
    heartbeat_due,
    heartbeat_overdue,
    restart_delay,
    silent_for,
)
from fleet.procs import WorkerProcess, WorkerSpec

log = logging.getLogger(__name__)

MAX_BEATS = 64
STATUS_KEY = "status_snapshot"  # where a heartbeat's reply carries the worker's status
KILL_WAIT_S = 5.0  # a SIGKILLed process is gone at once unless stuck in the kernel; then the next turn reaps it


@dataclass
class _Worker:
    spec: WorkerSpec
    policy: RestartPolicy
    proc: WorkerProcess | None = None
    state: WorkerState = WorkerState.STARTING
    generation: int = 0
    restarts: int = 0
    started_at: float = 0.0
    restart_at: float | None = None
    last_sent_at: float | None = None
    last_reply_at: float | None = None
    heartbeat: Future[dict[str, Any]] | None = None
    snapshot: dict[str, Any] | None = None
    status: dict[str, Any] | None = None  # its last `status` reply, taken with a heartbeat
    status_at: float | None = None
    last_exit: str | None = None
    last_error: str | None = None
    killing: bool = False


class FleetSupervisor:
    """Runs `specs`' workers; `poll()` often (every heartbeat_interval_s or less), `stop()` at the end."""

    def __init__(
        self,
        specs: Sequence[WorkerSpec],
        knobs: Knobs | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        token: str | None = None,
    ) -> None:
        names = [s.account for s in specs]
        if len(set(names)) != len(names):
            raise ValueError(f"one worker per account, got {names}")
        self.knobs = knobs or Knobs()
        self._clock = clock
        self._token = token
        self._workers = [_Worker(s, self.knobs.restart_policy()) for s in specs]
        self._lock = threading.Lock()  # status() is read from control threads while poll() turns
        self._stopping = False
        # One beat in flight per worker; threads are made only as beats need them, and accounts come and go.
        self._pool = ThreadPoolExecutor(max_workers=max(MAX_BEATS, len(specs)), thread_name_prefix="heartbeat")

    # ---- life ------------------------------------------------------------------------------------------------

    def start(self) -> None:
        """Spawn every worker, in order."""
        now = self._clock()
        # the sockets' directory is the supervisor's alone: a socket file's 0600 is set only after listen
        sockets = {Path(s.address.removeprefix("ipc://")).parent for s in self._specs if s.address.startswith("ipc://")}
        for directory in sockets:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._lock:
            for w in self._workers:
                self._spawn(w, now)

    def poll(self, now: float | None = None) -> None:
        """One turn: reap the dead and schedule their restarts, restart those whose delay has passed, collect
        heartbeat replies, kill the silent, send the heartbeats that are due."""
        now = self._clock() if now is None else now
        with self._lock:
            if self._stopping:
                return
            for w in self._workers:
                self._turn(w, now)

    def add(self, spec: WorkerSpec) -> None:
        """Run one more worker (an account whose lease was just taken), spawned now."""
        now = self._clock()
        address = Path(spec.address.removeprefix("ipc://"))
        if spec.address.startswith("ipc://"):
            address.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        with self._lock:
            if self._stopping:
                return
            if spec.account in self.accounts():
                raise ValueError(f"account {spec.account} already has a worker")
            worker = _Worker(spec, self.knobs.restart_policy())
            self._workers.append(worker)
            self._spawn(worker, now)

    def drop(self, account: str) -> None:
        """Forget a worker that no longer runs (given up or stopped): its account may be taken up again later."""
        with self._lock:
            kept = [w for w in self._workers if w.spec.account != account or w.proc is not None]
            self._workers = kept

    def kill(self, account: str, reason: str) -> None:
        """SIGKILL one worker at once and let it go (its account's lease is lost: it must not trade on)."""
        with self._lock:
            for w in self._workers:
                if w.spec.account == account:
                    if w.proc is not None:
                        w.proc.kill()
                        w.proc.wait(KILL_WAIT_S)
                    w.proc, w.heartbeat, w.state, w.restart_at = None, None, WorkerState.GIVEN_UP, None
                    w.last_exit = reason
                    log.critical("worker %s killed: %s", account, reason)

    def states(self) -> dict[str, WorkerState]:
        """Each worker's state, by account."""
        with self._lock:
            return {w.spec.account: w.state for w in self._workers}

    def restart(self, account: str) -> None:
        """SIGTERM one worker; it is restarted like any that died (its venues moved: a new paper host)."""
        with self._lock:
            for w in self._workers:
                if w.spec.account == account and w.proc is not None:
                    w.proc.terminate()

    def stop(self) -> None:
        """Stop every worker: SIGTERM to each in reverse start order, then up to stop_timeout_s for all of them
        (they stop side by side: fifty one after the other would take fifty stops), then SIGKILL the rest."""
        with self._lock:
            self._stopping = True
            running = [w for w in reversed(self._workers) if w.proc is not None]
        for w in running:
            assert w.proc is not None
            if w.proc.poll() is None:
                log.info("stopping worker %s (pid %s)", w.spec.account, w.proc.pid)
                w.proc.terminate()
        deadline = time.monotonic() + self.knobs.stop_timeout_s
        for w in running:
            proc = w.proc
            assert proc is not None
            code = proc.wait(max(0.0, deadline - time.monotonic()))
            if code is None:
                log.error("worker %s did not stop within %.1fs: killed", w.spec.account, self.knobs.stop_timeout_s)
                proc.kill()
                code = proc.wait(KILL_WAIT_S)
            with self._lock:
                w.state = WorkerState.STOPPED
                w.last_exit = describe_exit(code) if code is not None else "did not end after SIGKILL"
                w.proc = None if code is not None else proc
        with self._lock:
            for w in self._workers:
                if w.state is not WorkerState.GIVEN_UP:
                    w.state = WorkerState.STOPPED
        self._pool.shutdown(wait=False, cancel_futures=True)

    def run(self, stop: threading.Event, tick_s: float | None = None) -> None:
        """start(), then poll() until `stop` is set, then stop()."""
        tick = tick_s if tick_s is not None else min(0.5, self.knobs.heartbeat_interval_s / 2)
        self.start()
        try:
            while not stop.wait(tick):
                self.poll()
        finally:
            self.stop()

    # ---- reading ---------------------------------------------------------------------------------------------

    @property
    def _specs(self) -> list[WorkerSpec]:
        return [w.spec for w in self._workers]

    def accounts(self) -> list[str]:
        """The accounts, in start order."""
        return [w.spec.account for w in self._workers]

    def status(self) -> list[dict[str, Any]]:
        """One row per worker: account, address, pid, state, generation, restarts, seconds since its last
        heartbeat reply, its last heartbeat reply (`last_snapshot`), how it last ended, its last error."""
        now = self._clock()
        with self._lock:
            return [
                {
                    "account": w.spec.account,
                    "address": w.spec.address,
                    "pid": w.proc.pid if w.proc is not None else None,
                    "state": w.state.value,
                    "generation": w.generation,
                    "restarts": w.restarts,
                    "last_heartbeat_age_s": None if w.last_reply_at is None else round(now - w.last_reply_at, 1),
                    "restart_in_s": None if w.restart_at is None else round(max(0.0, w.restart_at - now), 1),
                    "last_snapshot": w.snapshot,
                    "status": w.status if w.state is WorkerState.RUNNING else None,
                    "status_age_s": None if w.status_at is None else round(now - w.status_at, 3),
                    "last_exit": w.last_exit,
                    "last_error": w.last_error,
                }
                for w in self._workers
            ]

    # ---- one worker's turn (under the lock) ------------------------------------------------------------------

    def _turn(self, w: _Worker, now: float) -> None:
        if w.state in (WorkerState.GIVEN_UP, WorkerState.STOPPED):
            return
        if w.proc is not None:
            code = w.proc.poll()
            if code is not None:
                self._died(w, now, code, describe_exit(code) if not w.killing else w.last_error or "killed")
                return
        if w.state is WorkerState.BACKOFF:
            if w.restart_at is not None and now >= w.restart_at:
                w.restarts += 1
                self._spawn(w, now)
            return
        if w.killing:
            if w.proc is not None:
                w.proc.kill()  # not reaped yet: the next turn looks again
            return
        self._collect(w, now)
        if heartbeat_overdue(now, w.started_at, w.last_reply_at, self.knobs):
            self._kill_silent(w, now)
            return
        if heartbeat_due(now, w.last_sent_at, w.heartbeat is not None, self.knobs.heartbeat_interval_s):
            w.last_sent_at = now
            w.heartbeat = self._pool.submit(self._beat, w.spec.address)

    def _spawn(self, w: _Worker, now: float) -> None:
        w.generation += 1
        w.proc, w.heartbeat, w.killing = WorkerProcess(w.spec), None, False
        w.started_at, w.restart_at, w.last_sent_at, w.last_reply_at = now, None, None, None
        try:
            pid = w.proc.start()
        except OSError as exc:
            w.proc = None
            log.error("worker %s could not start: %s", w.spec.account, exc)  # noqa: TRY400 - the reason is enough
            self._died(w, now, None, f"could not start: {exc}")
            return
        w.state = WorkerState.STARTING
        log.info("worker %s started (pid %d, generation %d)", w.spec.account, pid, w.generation)

    def _collect(self, w: _Worker, now: float) -> None:
        beat = w.heartbeat
        if beat is None or not beat.done():
            return
        w.heartbeat = None
        try:
            reply = beat.result()
        except ControlUnavailableError as exc:
            w.last_error = str(exc)
            return
        except Exception as exc:  # noqa: BLE001 - a heartbeat that failed oddly is a missed one, not a crash
            w.last_error = f"heartbeat failed: {type(exc).__name__}"
            return
        w.last_reply_at = now  # any reply, even an error one, says the worker is there
        status = reply.pop(STATUS_KEY, None)
        w.snapshot = reply["data"] if reply["ok"] else {"error": reply["error"]}
        if status is not None and status.get("ok"):
            # Dated when the beat was sent, not when collected: a change made meanwhile may not be in it.
            w.status, w.status_at = status["data"], w.last_sent_at
        if w.state is WorkerState.STARTING:
            log.info("worker %s answers (pid %s)", w.spec.account, w.proc.pid if w.proc else None)
        w.state = WorkerState.RUNNING

    def _beat(self, address: str) -> dict[str, Any]:
        """The heartbeat, then the worker's status (served from its memory, about a millisecond): the fleet's
        `status` is answered from these, whatever a slow worker is doing at that moment."""
        reply = call(address, HEARTBEAT, {}, token=self._token, timeout_s=self.knobs.call_timeout_s)
        with contextlib.suppress(ControlUnavailableError):  # the heartbeat answered: the status comes next time
            reply[STATUS_KEY] = call(address, "status", {}, token=self._token, timeout_s=self.knobs.call_timeout_s)
        return reply

    def _kill_silent(self, w: _Worker, now: float) -> None:
        silence = silent_for(now, w.started_at, w.last_reply_at)
        reason = f"silent for {silence:.1f}s: killed"
        log.error("worker %s (pid %s) %s", w.spec.account, w.proc.pid if w.proc else None, reason)
        w.last_error, w.killing = reason, True
        if w.proc is None:
            return
        w.proc.kill()
        code = w.proc.wait(KILL_WAIT_S)
        if code is not None:
            self._died(w, now, None, reason)

    def _died(self, w: _Worker, now: float, code: int | None, how: str) -> None:
        """Schedule its restart, or give up on it. `code` is None when the supervisor killed it."""
        w.proc, w.heartbeat, w.killing = None, None, False
        w.last_exit = how
        delay = restart_delay(w.policy, now, code)
        if delay is None:
            w.state, w.restart_at = WorkerState.GIVEN_UP, None
            log.critical("worker %s %s; given up: not restarted again (%d restarts)", w.spec.account, how, w.restarts)
            return
        w.state, w.restart_at = WorkerState.BACKOFF, now + delay
        log.warning("worker %s %s; restart in %.2fs", w.spec.account, how, delay)
