"""`supervisor.py run` for a fleet (`[[accounts]]` configured): one worker process per account this host leases.

Every `lease_s / 4` the supervisor renews the leases of the accounts it runs (a worker renews its own too, and
stops if it cannot: fleet/worker.py) and tries to take the free ones, up to `workers.max_accounts`. A worker
whose lease turns out to be another holder's is killed at once and let go; an account whose worker was given
up on is let go too, so that another host may try it. The control socket stays here and aggregates the workers.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from control.server import ControlServer
from core.config import Settings
from fleet.aggregate import STATUS_MAX_AGE_S, FleetControl
from fleet.paper import PaperHostError, PaperHostLink
from fleet.policy import EXIT_LEASE, Knobs, WorkerState
from fleet.procs import WorkerSpec, worker_address, worker_argv
from fleet.supervisor import FleetSupervisor
from storage.leases import Lease, LeaseBook, LeaseRow

log = logging.getLogger("supervisor")

EXIT_OK = 0
EXIT_FAILURE = 1
TICK_S = 0.2


def holder_id() -> str:
    """This supervisor run's name in the lease table: host, pid and a random part (a pid is reused)."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


class Fleet:
    """The accounts this host runs: leases taken and kept, a worker for each, given back at the end."""

    def __init__(
        self,
        settings: Settings,
        book: LeaseBook,
        supervisor: FleetSupervisor,
        spec_for: Callable[[str], WorkerSpec],
        holder: str,
    ) -> None:
        self.settings = settings
        self.book = book
        self.supervisor = supervisor
        self._spec_for = spec_for
        self.holder = holder
        self.lease_s = float(settings.workers.lease_s)
        self.leases: dict[str, Lease] = {}
        self._let_go: set[str] = set()  # given up here: left to the other hosts until this supervisor restarts
        self._next_claim = 0.0

    def turn(self, now: float) -> None:
        """Renew what is ours, let go what cannot run here, take free accounts when a claim is due."""
        if now < self._next_claim:
            return
        self._next_claim = now + self.lease_s / 4
        states = self.supervisor.states()
        for account, lease in list(self.leases.items()):
            state = states.get(account)
            if state is WorkerState.GIVEN_UP:
                self._let_go_of(account, lease)
                continue
            try:
                kept = self.book.renew(lease, self.lease_s)
            except Exception as exc:  # noqa: BLE001 - the workers renew too; each stops on its own deadline
                log.warning("lease of %s not renewed (%s); retrying", account, type(exc).__name__)
                continue
            if not kept:
                self.supervisor.kill(account, "its lease is another holder's")
                self.supervisor.drop(account)
                del self.leases[account]
        self._claim()

    def _let_go_of(self, account: str, lease: Lease) -> None:
        last = next((r for r in self.supervisor.status() if r["account"] == account), None)
        self.supervisor.drop(account)
        del self.leases[account]
        if last is None or last.get("last_exit") != f"exited with status {EXIT_LEASE}":
            self._let_go.add(account)  # it failed here; another host may fare better
            try:
                self.book.release(lease)
            except Exception as exc:  # noqa: BLE001 - it expires on its own
                log.warning("lease of %s not released (%s)", account, type(exc).__name__)
        log.warning("account %s let go: another host may take it", account)

    def _claim(self) -> None:
        limit = self.settings.workers.max_accounts
        for account in self.settings.account_names():
            if account in self.leases or account in self._let_go:
                continue
            if limit and len(self.leases) >= limit:
                return
            try:
                lease = self.book.try_acquire(
                    account, self.holder, host=socket.gethostname(), pid=os.getpid(), lease_s=self.lease_s
                )
            except Exception as exc:  # noqa: BLE001 - the database is away: the next claim tries again
                log.warning("lease of %s not taken (%s)", account, type(exc).__name__)
                return
            if lease is None:
                continue
            log.info("account %s leased (generation %d): starting its worker", account, lease.generation)
            self.leases[account] = lease
            self.supervisor.add(self._spec_for(account))

    def release_all(self) -> None:
        """Give every lease back (after the workers stopped): another host need not wait for them to expire."""
        for account, lease in list(self.leases.items()):
            try:
                self.book.release(lease)
            except Exception as exc:  # noqa: BLE001 - it expires on its own
                log.warning("lease of %s not released (%s)", account, type(exc).__name__)
        self.leases.clear()

    def lease_rows(self) -> list[dict[str, Any]]:
        """Who holds which account across the fleet, for `status`."""
        try:
            rows: list[LeaseRow] = self.book.holders()
        except Exception as exc:  # noqa: BLE001 - status still answers
            return [{"error": f"leases not readable: {type(exc).__name__}"}]
        return [
            {
                "account": r.account,
                "host": r.host,
                "pid": r.pid,
                "holder": r.holder,
                "generation": r.generation,
                "expired": r.expired,
                "ours": r.holder == self.holder,
            }
            for r in rows
        ]


def run_fleet(settings: Settings, config: Path | None, stop: threading.Event | None = None) -> int:
    """The fleet supervisor from start to a clean stop (SIGTERM/SIGINT); the exit status. The caller holds the
    data dir's lock and has checked the database."""
    from storage.db import make_engine, open_database  # noqa: PLC0415 - keep the CLI commands fast

    stop = stop or threading.Event()
    open_database(settings.database_url).dispose()  # the schema is brought up to date once, before any worker
    paper = PaperHostLink(settings, config) if any(map(settings.account_is_paper, settings.account_names())) else None
    if paper is not None:
        try:
            paper.ensure()
        except PaperHostError as exc:
            log.critical("paper venues: %s", exc)
            return EXIT_FAILURE
    holder = holder_id()
    token = settings.control.token.get_secret_value() if settings.control.token else None
    supervisor = FleetSupervisor([], Knobs.from_config(settings.workers), token=token)

    def spec_for(account: str) -> WorkerSpec:
        argv = worker_argv(config, settings.data_dir, account, holder)
        return WorkerSpec(account, argv, worker_address(settings.data_dir, account), env=_worker_env(settings))

    db = make_engine(settings.database_url)
    fleet = Fleet(settings, LeaseBook(db), supervisor, spec_for, holder)
    # a status taken with the heartbeats answers the fleet's `status` while younger than a few beats
    fresh_s = max(STATUS_MAX_AGE_S, 3 * float(settings.workers.heartbeat_interval_s))
    handler = FleetControl(supervisor, token, leases=fleet.lease_rows, status_max_age_s=fresh_s)
    server = ControlServer(settings.control_address, handler, token)

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %s: stopping the workers (open pairs stay open)", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    log.info(
        "perp-farmer fleet: %d account(s) configured (%s), this host runs up to %s, holder %s",
        len(settings.account_names()),
        ", ".join(settings.account_names()),
        settings.workers.max_accounts or "all",
        holder,
    )
    # The leases on a thread of their own: a database that makes a renewal wait (SQLite's busy timeout is 30 s)
    # must not hold up the heartbeats, or every worker would stop for want of them.
    leasing = threading.Thread(target=_keep_leases, args=(fleet, stop), name="leases", daemon=True)
    try:
        server.start()
        supervisor.start()
        leasing.start()
        while not stop.wait(TICK_S):
            supervisor.poll()
            if paper is not None and paper.poll():
                for account in supervisor.accounts():
                    supervisor.restart(account)  # the venues moved: each worker reads the new host file
    except PaperHostError as exc:
        log.critical("paper venues: %s", exc)
        return EXIT_FAILURE
    finally:
        stop.set()
        server.stop()
        if leasing.is_alive():  # a claim under way ends first (one that outlasts this finds the workers stopping)
            leasing.join(float(settings.workers.lease_s))
        supervisor.stop()
        fleet.release_all()
        if paper is not None:
            paper.stop()
        db.dispose()
    log.info("stopped")
    return EXIT_OK


def _keep_leases(fleet: Fleet, stop: threading.Event) -> None:
    """Renew, let go and claim leases until `stop` (each turn decides whether a claim is due)."""
    while not stop.wait(TICK_S):
        try:
            fleet.turn(time.monotonic())
        except Exception:  # a bug here must not end the leasing: the workers would lose their leases
            log.exception("lease turn failed; trying again")


def _worker_env(settings: Settings) -> dict[str, str]:
    """The supervisor's environment (the accounts' keys come through it) plus what the command line set."""
    env = dict(os.environ)
    env["APP__MODE"] = settings.mode.value
    env["APP__LOG__LEVEL"] = settings.log.level
    return env
