"""A stand-in for the engine worker (fleet/worker.py) in the fleet tests: it serves the control protocol on its
socket with canned replies, and does what a test asks through files in its `--dir`:

- `starts.log` gets a line per event: `start|stop|orphan|<command> <account> <pid>`, so a test counts restarts
  and sees the stop order and which account served what;
- `<account>.exit` (holding an exit status): every start of that account exits at once with it;
- `<account>.hang`: the next worker of that account to see it removes it and stops answering heartbeats.

Run: `python -m tests.fleet_fake_worker --account A --address ipc://... --dir D [--watch-timeout S] [--pairs 1,2]`.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from control.server import ControlServer
from control.spec import CommandError, check_account
from fleet.link import Handler, SupervisorWatch, watched

TICK_S = 0.02


class FakeWorker:
    """The canned engine of one account."""

    def __init__(self, account: str, directory: Path, pair_ids: list[int]) -> None:
        self.account = account
        self.directory = directory
        self.pair_ids = pair_ids
        self.hanging = threading.Event()
        self.paused: str | None = None

    def note(self, what: str) -> None:
        """One line in starts.log (appends of one short line do not interleave)."""
        with (self.directory / "starts.log").open("a") as log:
            log.write(f"{what} {self.account} {os.getpid()}\n")

    def claim_hang(self) -> None:
        """Hang if the test asked for it (whoever removes the file hangs: one worker, once)."""
        try:
            (self.directory / f"{self.account}.hang").unlink()
        except FileNotFoundError:
            return
        self.note("hang")
        self.hanging.set()

    def row(self, pid: int) -> dict[str, Any]:
        """A pair row as the engine's `pairs` shows it."""
        return {
            "id": pid, "market": "BTC", "state": "open", "long": "venue_a", "short": "venue_b", "quantity": "0.01",
            "leverage": 2, "notional": "500", "opened_at": "2026-01-01T00:00:00+00:00", "expires_at": None,
            "closed_at": None, "realized_pnl": None, "fees": "0.1", "volume": "1000", "points": None,
            "close_reason": None,
        }  # fmt: skip

    def handle(self, cmd: str, args: dict[str, Any]) -> Any:
        """The canned reply to one command (after the account check a real worker makes)."""
        if args.get("account") is not None:
            check_account(args["account"], [self.account])
        if cmd == "health":
            if self.hanging.is_set():
                threading.Event().wait()  # never answers
            return {"healthy": True, "database": True, "actors": {}, "problems": []}
        if cmd in ("pair", "close") and args["id"] not in self.pair_ids:
            raise CommandError("not_found", f"no pair {args['id']}")
        self.note(cmd)
        if cmd == "status":
            return self.status()
        if cmd == "pairs":
            return [self.row(pid) for pid in sorted(self.pair_ids, reverse=True)]
        if cmd == "pair":
            return {"pair": self.row(args["id"]), "legs": [], "orders": [], "events": []}
        if cmd == "close":
            return {"states": {str(args["id"]): "closed"}}
        if cmd == "close-all":
            return {"states": {str(pid): "closed" for pid in self.pair_ids}}
        if cmd == "pause":
            self.paused = args.get("reason") or "paused by operator"
            return {"trading": "paused", "reason": self.paused}
        if cmd == "resume":
            self.paused = None
            return {"trading": "normal"}
        raise CommandError("unknown_command", cmd)

    def status(self) -> dict[str, Any]:
        """A status reply shaped like the engine's."""
        return {
            "mode": "paper", "paper_prices": None, "uptime_s": 1,
            "trading": {"mode": "paused" if self.paused else "normal", "reason": self.paused, "blocks": {}},
            "limits": [], "actors": {"monitor": {"alive": True, "generation": 1, "restarts": 0, "last_error": None}},
            "feeds": {}, "collateral_ratio": {}, "equity": {"venue_a": "1000.50", "venue_b": "999.50"},
            "unrealized_pnl": "1.25", "monitor_ticks": 3,
            "pairs": {"open": len(self.pair_ids), "closed": 1},
            "open_pairs": [self.row(pid) for pid in self.pair_ids], "alerts": [],
            "coordinator": {}, "closer": {},
        }  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM (exit 0), or until the supervisor's heartbeats stop (exit 0, noted as `orphan`)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--account", required=True)
    parser.add_argument("--address", required=True)
    parser.add_argument("--dir", type=Path, required=True)
    parser.add_argument("--watch-timeout", type=float, default=0.0, help="0: do not watch the supervisor")
    parser.add_argument("--pairs", default="", help="pair ids this account holds, comma-separated")
    parser.add_argument("--ignore-term", action="store_true", help="ignore SIGTERM (only SIGKILL ends it)")
    args = parser.parse_args(argv)
    worker = FakeWorker(args.account, args.dir, [int(x) for x in args.pairs.split(",") if x])
    worker.note("start")
    exit_file = args.dir / f"{args.account}.exit"
    if exit_file.exists():
        return int(exit_file.read_text().strip() or 1)
    stop = threading.Event()
    orphaned = threading.Event()
    handler: Handler = worker.handle
    if args.watch_timeout > 0:
        watch = SupervisorWatch(args.watch_timeout)
        handler = watched(handler, watch)
        watch.watch(orphaned.set, stop)
    if args.ignore_term:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
    server = ControlServer(args.address, handler).start()
    try:
        while not stop.wait(TICK_S) and not orphaned.is_set():
            worker.claim_hang()
    finally:
        worker.note("orphan" if orphaned.is_set() else "stop")
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
