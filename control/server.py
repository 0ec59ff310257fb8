"""The control socket server: pynng Rep0 in worker threads of the supervisor process. Never crashes:
every request that can be answered gets a reply, malformed or not, and a slow command delays no other."""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pynng

from control.commands import COMMANDS
from control.protocol import SOCKET_MAX_BYTES, CommandError, error, ok, parse_request

log = logging.getLogger(__name__)

Handler = Callable[[str, dict[str, Any]], Any]
WORKERS = 8  # requests in flight at once
SLOW_SLOTS = 4  # of those, at most this many slow commands (close, close-all, pause, resume); beyond, `busy`
STOP_JOIN_S = 2.0
RECOVER_S = 0.05  # after an unexpected socket error: no hot loop if it repeats


class ControlServer:
    """Serves `handler(cmd, args) -> data` on `address` (ipc:// files are made 0600).

    Each of `workers` threads owns a Rep0 context, so requests are served concurrently. A reserved command
    (`health`) is never refused; the others share `workers - 1` slots, the slow ones `slow_slots` of them, so
    one worker is always free for `health` and some for `status` however many closes are running.
    """

    def __init__(self, address: str, handler: Handler, token: str | None = None,
                 workers: int = WORKERS, slow_slots: int = SLOW_SLOTS) -> None:  # fmt: skip
        if not 0 < slow_slots < workers - 1:
            raise ValueError(f"need 0 < slow_slots < workers - 1, got {slow_slots} of {workers}")
        self._handler = handler
        self._token = token
        self.workers = workers
        self.slow_slots = slow_slots
        self._stop = threading.Event()
        self._limited = threading.BoundedSemaphore(workers - 1)
        self._slow = threading.BoundedSemaphore(slow_slots)
        self._count_lock = threading.Lock()
        self.served = 0
        # Contexts whose thread waits for a request: `stop` closes them to end the wait. A receive that timed
        # out to look at the stop flag cost an idle process about 1% of a core (eight threads at 200 ms, each
        # timeout a Python exception), and fifty fleet workers' wake-ups preempted the one writing an open's legs.
        self._waiting: set[pynng.Context] = set()
        self._waiting_lock = threading.Lock()
        # The size cap must be set before listen to apply (libraries.md §2).
        self._sock = pynng.Rep0(recv_max_size=SOCKET_MAX_BYTES)
        listener = self._sock.listen(address)
        self.address = _bound_address(address, listener)
        if address.startswith("ipc://"):
            Path(address.removeprefix("ipc://")).chmod(0o600)
        self._threads = [threading.Thread(target=self._serve, name=f"control-{i}", daemon=True) for i in range(workers)]

    def start(self) -> ControlServer:
        """Serve in background threads."""
        for thread in self._threads:
            thread.start()
        log.info("control socket listening on %s", self.address)
        return self

    @property
    def serving(self) -> int:
        """How many worker threads are still running."""
        return sum(thread.is_alive() for thread in self._threads)

    def stop(self) -> None:
        """Stop serving and remove the socket; a worker still inside a slow command is left to finish."""
        with self._waiting_lock:
            self._stop.set()
            idle = list(self._waiting)
        for ctx in idle:  # its receive ends at once (Closed), and the thread with it
            with contextlib.suppress(Exception):
                ctx.close()
        deadline = time.monotonic() + STOP_JOIN_S
        for thread in self._threads:
            if thread.is_alive():
                thread.join(max(0.0, deadline - time.monotonic()))
        self._sock.close()

    def reply_to(self, raw: bytes) -> bytes:
        """The reply for one request (never raises)."""
        cmd = "?"
        try:
            cmd, args = parse_request(raw, self._token)
            return self._run(cmd, args)
        except CommandError as exc:
            return error(exc.code, exc.message)
        except Exception:
            # The exception text may carry paths or venue replies: it goes to the log, a reference to both.
            reference = secrets.token_hex(6)
            log.exception("control command %s failed; reference %s", cmd, reference)
            return error("internal", f"internal error; see the supervisor log for reference {reference}")

    def _run(self, cmd: str, args: dict[str, Any]) -> bytes:
        spec = COMMANDS[cmd]
        if spec.reserved:
            return ok(self._handler(cmd, args))
        with _slot(self._limited, "the control server is busy; try again"):
            if not spec.slow:
                return ok(self._handler(cmd, args))
            with _slot(self._slow, f"{self.slow_slots} slow commands are running; try again when one ends"):
                return ok(self._handler(cmd, args))

    def _serve(self) -> None:
        try:
            ctx = self._sock.new_context()
        except pynng.NNGException as exc:
            log.warning("control worker not started: %s", type(exc).__name__)
            return
        try:
            while not self._stop.is_set():
                try:
                    self._serve_one(ctx)
                except pynng.Closed:
                    return
                except Exception as exc:  # noqa: BLE001 - the loop must outlive anything; the payload stays out
                    log.warning("control request not served: %s", type(exc).__name__)
                    ctx = self._renew(ctx)
        finally:
            with contextlib.suppress(Exception):
                ctx.close()

    def _serve_one(self, ctx: pynng.Context) -> None:
        with self._waiting_lock:  # with the flag: a stop either sees this context waiting or is seen here
            if self._stop.is_set():
                return  # the serving loop ends on the flag
            self._waiting.add(ctx)
        try:
            msg = ctx.recv_msg()
        finally:
            with self._waiting_lock:
                self._waiting.discard(ctx)
        try:
            reply = self.reply_to(msg.bytes)
        except Exception as exc:  # noqa: BLE001 - reply_to should not raise; if it does, still answer
            log.warning("control request failed outside its handler: %s", type(exc).__name__)
            reply = error("internal", "internal error")
        try:
            ctx.send(reply)
        except pynng.Closed:
            raise
        except pynng.NNGException as exc:  # the requester went away or timed out: nothing to answer
            log.warning("control reply not sent: %s", exc)
            return
        with self._count_lock:
            self.served += 1

    def _renew(self, ctx: pynng.Context) -> pynng.Context:
        """A fresh context after an unexpected error, in case the old one is stuck mid-request."""
        self._stop.wait(RECOVER_S)
        with contextlib.suppress(Exception):
            ctx.close()
        try:
            return self._sock.new_context()
        except pynng.Closed:
            raise
        except pynng.NNGException:
            return ctx


@contextlib.contextmanager
def _slot(semaphore: threading.BoundedSemaphore, busy: str) -> Any:
    if not semaphore.acquire(blocking=False):
        raise CommandError("busy", busy)
    try:
        yield
    finally:
        semaphore.release()


def _bound_address(address: str, listener: pynng.Listener) -> str:
    """The address with the real port when tcp port 0 was asked for (pynng's `.port` is byte-swapped)."""
    if not address.startswith("tcp://") or not address.endswith(":0"):
        return address
    return f"tcp://{listener.local_address}"
