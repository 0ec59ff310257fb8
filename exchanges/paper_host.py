"""The paper host: one simulator per venue serving every paper account of a fleet, in a process of its own.

`python -m exchanges.paper_host --config C --data-dir D` starts the simulators (state kept in D, as paper mode
keeps it), opens an account per paper account on each (own keys, own collateral; the keys drawn from
paper.seed and the account's name, so a restart hands out the same ones), and once every simulator listens
writes D/paper-host.json (0600): {"pid": ..., "accounts": {name: {venue: {field: value}}}, "sims": {venue: url}},
each inner dict the venue section (URLs and keys) with which an engine reaches that account as it would the real
venue, each sims url a simulator's admin endpoint (GET <url>/orders: who sent which order, read_order_log).
SIGTERM or SIGINT: save, stop, remove the file. The URLs change on every start (free ports); the keys do not.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO, Any

import requests

from core.clock import Clock, SystemClock
from core.config import ConfigError, Settings, load_settings
from core.logs import configure_logging
from core.sched import batch_class
from exchanges.paper import PaperVenues
from exchanges.venue_parts import paper_account_name

log = logging.getLogger("paper_host")

HOST_FILE = "paper-host.json"
LOCK_NAME = "paper-host.lock"
EXIT_CONFIG = 2
EXIT_BUSY = 3


def paper_account_names(settings: Settings) -> list[str]:
    """The accounts the paper host serves: every configured account that trades on paper."""
    return [n for n in settings.account_names() if settings.account_is_paper(n)]


def host_file(data_dir: Path) -> Path:
    """Where a paper host on `data_dir` describes itself."""
    return data_dir / HOST_FILE


class HostBusyError(RuntimeError):
    """Another paper host serves this data directory."""


def _lock(data_dir: Path) -> IO[str]:
    """An exclusive flock on D/paper-host.lock (the kernel drops it when the process dies, even by kill -9):
    two hosts on one state file would overwrite each other's accounts."""
    handle = (data_dir / LOCK_NAME).open("a+", encoding="ascii")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        raise HostBusyError(f"a paper host (pid {holder}) already serves {data_dir}") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def read_host_file(data_dir: Path) -> dict[str, Any] | None:
    """What the paper host on `data_dir` wrote (pid and accounts), or None when there is none."""
    try:
        data: dict[str, Any] = json.loads(host_file(data_dir).read_text())
    except FileNotFoundError:
        return None
    return data


def read_order_log(
    data_dir: Path, account: str | None = None, timeout_s: float = 5.0
) -> dict[str, list[dict[str, Any]]]:
    """Each venue's order log (of paper account `account` alone if given) read over HTTP from the paper host on
    `data_dir`, as PaperVenues.order_log gives it in-process; FileNotFoundError when no host serves it."""
    described = read_host_file(data_dir)
    if described is None:
        raise FileNotFoundError(host_file(data_dir))
    query = {} if account is None else {"account": paper_account_name(account)}
    logs: dict[str, list[dict[str, Any]]] = {}
    for venue, url in described["sims"].items():
        reply = requests.get(f"{url}/orders", params=query, timeout=timeout_s)
        reply.raise_for_status()
        logs[venue] = reply.json()["orders"]
    return logs


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """Write `data` as JSON readable by the owner alone, replacing `path` atomically (never a torn file)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            os.fchmod(fh.fileno(), 0o600)  # a tmp left by a crash may have been made with other bits
            json.dump(data, fh, indent=1)
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@dataclass
class PaperHost:
    """The simulators of one data directory and the file that tells engines how to reach each account."""

    venues: PaperVenues
    data_dir: Path
    _lock: IO[str]

    @classmethod
    def start(
        cls, settings: Settings, data_dir: Path, *, accounts: Sequence[str] | None = None, clock: Clock | None = None
    ) -> PaperHost:
        """Start the simulators with an account per name (default: paper_account_names) and write the host
        file; HostBusyError when another paper host serves `data_dir`."""
        data_dir.mkdir(parents=True, exist_ok=True)
        lock = _lock(data_dir)
        try:
            names = paper_account_names(settings) if accounts is None else list(accounts)
            venues = PaperVenues.start(
                clock or SystemClock(),
                seed=settings.paper.seed,
                collateral=settings.paper.collateral_usd,
                state_dir=data_dir,
                paper=settings.paper,
                venues=settings.trading.venues,
                accounts=names,
            )
        except BaseException:
            lock.close()
            raise
        host = cls(venues, data_dir, lock)
        try:
            _write_private(host_file(data_dir), host.describe())
        except BaseException:
            host.stop()
            raise
        for name, sections in venues.credentials().items():
            for venue, fields in sections.items():
                urls = {k: v for k, v in fields.items() if k.endswith("url")}  # never the keys
                log.info("paper account %s on %s: %s", name, venue, urls)
        return host

    def describe(self) -> dict[str, Any]:
        """The host file's content: this process and every account's venue sections."""
        return {"pid": os.getpid(), "accounts": self.venues.credentials(), "sims": self.venues.admin_urls()}

    def stop(self) -> None:
        """Save and stop the simulators, then remove the host file (nobody can reach them any more)."""
        try:
            self.venues.stop()
        finally:
            host_file(self.data_dir).unlink(missing_ok=True)
            self._lock.close()  # last: no other host starts on this state before it is saved


def build_parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m exchanges.paper_host", description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=None, help="TOML file (default ./config.toml)")
    parser.add_argument("--data-dir", type=Path, default=None, help="where the simulators' state is kept")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; returns the exit status."""
    args = build_parser().parse_args(argv)
    overrides: dict[str, Any] = {} if args.data_dir is None else {"data_dir": args.data_dir}
    try:
        settings = load_settings(args.config, overrides)
    except ConfigError as exc:
        sys.stderr.writelines(f"config error: {line}\n" for line in exc.lines)
        return EXIT_CONFIG
    configure_logging(settings)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        log.info("paper host: %s, stopping", signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    # Before any simulator thread starts (they inherit it): a simulator woken by an engine's first leg must not
    # preempt that engine before its second. Fleet bench leg skew p99, 50 accounts: 1.26, 1.26 and 2.12 ms in
    # three runs with it, 4.19 and 4.52 ms in two without (stop 24, before the workers were batch too).
    batch_class("paper host")
    try:
        host = PaperHost.start(settings, settings.data_dir)
    except HostBusyError as exc:
        log.error("paper host not started: %s", exc)  # noqa: TRY400 - the reason is the whole story
        return EXIT_BUSY
    except ConfigError as exc:
        sys.stderr.writelines(f"config error: {line}\n" for line in exc.lines)
        return EXIT_CONFIG
    log.info("paper host serving %d account(s) from %s", len(host.venues.accounts), settings.data_dir)
    try:
        while not stop.wait(1.0):  # a timed wait: signal handlers run between waits
            pass
    finally:
        host.stop()
    log.info("paper host stopped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
