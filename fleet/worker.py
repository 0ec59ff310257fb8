"""One account's engine in a fleet: `python -m fleet.worker --config C --data-dir D --account NAME --holder H`.

It takes the account's lease (held for H, the supervisor that spawned it), runs today's engine for that account,
serves control on `ipc://D/workers/NAME.ipc`, and stops when told (SIGTERM), when its lease cannot be renewed
within lease_s/2, or when its supervisor's heartbeats stop for heartbeat_timeout_s.

Written against the interfaces agreed for issue 18 (Settings.for_account and .workers, storage.leases.LeaseBook,
the paper host's paper-host.json): those are reached lazily and untyped until they exist.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from core.config import ConfigError, Settings, WorkersConfig
from core.sched import batch_class
from fleet.paper import host_dir, serving
from fleet.procs import worker_address
from storage.leases import Lease, LeaseBook

log = logging.getLogger("fleet.worker")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_CONFIG = 2  # fleet.policy.EXIT_CONFIG: the supervisor gives up at once
EXIT_LEASE = 3  # the account's lease is another holder's, or could not be kept


class LeaseKeeper:
    """Renews a lease every lease_s/4 from its own thread; calls `on_lost` once when it is someone else's, or
    when no renewal has succeeded for lease_s/2 (the database is unreachable: another may take it soon). The
    deadline is watched from a second thread, so a renewal stuck in a dead connection cannot hide it."""

    def __init__(self, book: LeaseBook, lease: Lease, lease_s: float, on_lost: Callable[[str], None],
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.book, self.lease, self.lease_s = book, lease, lease_s
        self._on_lost = on_lost
        self._clock = clock
        self._renewed_at = clock()
        self._lock = threading.Lock()
        self.lost: str | None = None

    def turn(self) -> bool:
        """One renewal; False once the lease is lost (then `on_lost` has been called)."""
        if self.lost is not None:
            return False
        try:
            if self.book.renew(self.lease, self.lease_s):
                self._renewed_at = self._clock()
                return self.lost is None
            reason = "the lease is no longer ours"
        except Exception as exc:  # noqa: BLE001 - a renewal that failed is retried until the deadline
            if not self.overdue():
                log.warning("lease renewal failed (%s); retrying", type(exc).__name__)
                return True
            reason = f"the lease could not be renewed for {self.silence():.1f}s ({type(exc).__name__})"
        self._lose(reason)
        return False

    def silence(self) -> float:
        """Seconds since the last renewal that succeeded."""
        return self._clock() - self._renewed_at

    def overdue(self) -> bool:
        """No renewal for lease_s/2: the lease may expire before the next one lands."""
        return self.silence() > self.lease_s / 2

    def check_deadline(self) -> bool:
        """Lose the lease when overdue, whatever the renewing thread is doing; False once lost."""
        if self.lost is None and self.overdue():
            self._lose(f"the lease could not be renewed for {self.silence():.1f}s")
        return self.lost is None

    def _lose(self, reason: str) -> None:
        with self._lock:
            if self.lost is not None:
                return
            self.lost = reason
        log.critical("account %s: %s: stopping", self.lease.account, reason)
        self._on_lost(reason)

    def run(self, stop: threading.Event) -> None:
        """Renew, and watch the deadline, in two daemon threads until `stop` is set or the lease is lost."""

        def renew() -> None:
            while not stop.wait(self.lease_s / 4) and self.turn():
                pass

        def watch() -> None:
            while not stop.wait(self.lease_s / 20) and self.check_deadline():
                pass

        for name, target in (("lease", renew), ("lease-deadline", watch)):
            threading.Thread(target=target, name=name, daemon=True).start()


def paper_venues(settings: Settings, account: str) -> dict[str, dict[str, Any]] | None:
    """The paper host's venue sections for `account` (URLs and keys), or None for a live account. ConfigError
    when a paper account has no host serving it: the worker must never start simulators of its own."""
    if not settings.account_is_paper(account):
        return None
    directory = host_dir(settings)
    found = (serving(directory) or {}).get("accounts", {}).get(account)
    if not isinstance(found, dict):
        raise ConfigError([f"account {account} is a paper account, but no paper host serves it in {directory}"])
    return found


def take_scheduling_class(workers: WorkersConfig) -> bool:
    """Put this worker on the batch scheduling class if `workers.batch_scheduling` says so, before any of its
    threads starts (they inherit it); True if it is on it now."""
    return bool(workers.batch_scheduling) and batch_class("worker")


def main(argv: list[str] | None = None) -> int:
    """Parse the command line, build the account's settings and run its engine; the exit status."""
    from core.config import load_settings  # noqa: PLC0415 - keep the module light to import
    from core.logs import configure_logging  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m fleet.worker")
    parser.add_argument("--config", type=Path)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--account", required=True)
    parser.add_argument("--holder", required=True, help="the lease holder: the supervisor that spawned this worker")
    args = parser.parse_args(argv)
    try:
        fleet_settings = load_settings(args.config, {"data_dir": args.data_dir})
        settings = fleet_settings.for_account(args.account, paper_venues(fleet_settings, args.account))
    except ConfigError as exc:
        for line in exc.lines:
            print(f"config error: {line}", file=sys.stderr)  # noqa: T201 - as `supervisor.py run` reports it
        return EXIT_CONFIG
    configure_logging(settings, worker=True)
    take_scheduling_class(fleet_settings.workers)
    return serve(settings, fleet_settings.workers, args.holder)


def serve(settings: Settings, workers: WorkersConfig, holder: str) -> int:
    """The account's engine between its lease and its stop; the exit status."""
    from actors.runtime import Runtime  # noqa: PLC0415 - see main
    from control.server import ControlServer  # noqa: PLC0415
    from fleet.link import SupervisorWatch, watched  # noqa: PLC0415
    from storage.db import make_engine  # noqa: PLC0415

    lease_s = float(workers.lease_s)
    db = make_engine(settings.database_url)
    book = LeaseBook(db)
    try:
        lease = book.try_acquire(settings.account, holder, host=socket.gethostname(), pid=os.getpid(), lease_s=lease_s)
    except SQLAlchemyError as exc:  # restarted with backoff, like any worker that could not start
        log.error("account %s: its lease could not be read: %s", settings.account, str(exc).splitlines()[0])  # noqa: TRY400
        db.dispose()
        return EXIT_FAILURE
    if lease is None:
        log.critical("account %s is leased to another holder: not started", settings.account)
        db.dispose()
        return EXIT_LEASE
    stop = threading.Event()

    def lease_lost(_reason: str) -> None:
        # Stop in order if that is quick; if not, end the process before the lease can expire and be taken
        # (lost at lease_s/2 at the latest, gone at 3/4): it must not trade once another worker may.
        stop.set()
        fence = threading.Timer(lease_s / 4, os._exit, (EXIT_LEASE,))
        fence.daemon = True
        fence.start()

    keeper = LeaseKeeper(book, lease, lease_s, lease_lost)
    watch = SupervisorWatch(float(workers.heartbeat_timeout_s))
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    engine = Runtime(settings)
    token = settings.control.token.get_secret_value() if settings.control.token else None
    server = ControlServer(worker_address(settings.data_dir, settings.account), watched(engine.command, watch), token)
    fatal: str | None = None
    try:
        keeper.run(stop)
        engine.start()
        server.start()
        watch.poke()  # the supervisor's heartbeats reach this worker from now on: its silence counts from here
        watch.watch(stop.set, stop)
        fatal = engine.run(stop)
    finally:
        stop.set()
        server.stop()
        engine.shutdown()
        if keeper.lost is None:
            book.release(lease)
        db.dispose()
    if fatal is not None:
        log.critical("account %s stopped: %s", settings.account, fatal)
        return EXIT_FAILURE
    return EXIT_LEASE if keeper.lost is not None else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
