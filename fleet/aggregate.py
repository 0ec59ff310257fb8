"""The fleet supervisor's control socket: each command served by asking the workers' own control sockets and
merging their replies. With `account` a command goes to that one worker, unchanged; without, to every worker
(`pair` and `close` to the one that holds the pair).

A handler for control.server.ControlServer: `FleetControl(fleet, token)(cmd, args)`.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from control.client import ControlUnavailableError, call
from control.commands import CLOSE_ALL_TIMEOUT_S, CLOSE_TIMEOUT_S, STATUS_TIMEOUT_S
from control.spec import CommandError, check_account
from core.domain import ACTIVE_STATES

# A worker's own command may take this long (its actors' timeouts): the fan-out waits a little longer.
MARGIN_S = 10.0
TIMEOUTS_S: Mapping[str, float] = {
    "status": 2 * STATUS_TIMEOUT_S + MARGIN_S,  # two actors asked, one after the other
    "close": CLOSE_TIMEOUT_S + MARGIN_S,
    "close-all": CLOSE_ALL_TIMEOUT_S + MARGIN_S,
    "pause": 30.0,
    "resume": 30.0,
    "health": 5.0,
}
DEFAULT_TIMEOUT_S = 10.0
CHANGING = frozenset({"pause", "resume", "close", "close-all"})  # commands after which a status is asked anew
STATUS_MAX_AGE_S = 5.0  # a status taken with a heartbeat answers the fleet's `status` until this old
PROCESS_FIELDS = ("state", "pid", "generation", "restarts", "last_heartbeat_age_s", "restart_in_s", "last_exit")


class Fleet(Protocol):
    """What the aggregation reads of the supervisor (fleet.supervisor.FleetSupervisor)."""

    def status(self) -> list[dict[str, Any]]:
        """One row per worker: at least account, address, state and PROCESS_FIELDS, and last_snapshot."""


@dataclass(frozen=True, slots=True)
class Answer:
    """One worker's reply: its data, or why there is none (`code` as in a control error)."""

    data: Any = None
    code: str | None = None
    message: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the worker did it."""
        return self.code is None


Rows = dict[str, dict[str, Any]]


class FleetControl:
    """Serves the control commands of a fleet from its workers' sockets."""

    def __init__(
        self,
        fleet: Fleet,
        token: str | None = None,
        timeouts_s: Mapping[str, float] | None = None,
        leases: Callable[[], list[dict[str, Any]]] | None = None,
        status_max_age_s: float = STATUS_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fleet = fleet
        self._leases = leases  # who holds which account across the fleet (the lease table), for `status`
        self._status_max_age_s = status_max_age_s
        self._clock = clock  # the fleet supervisor's: a status's age is measured on it
        # When an account was last changed from here: a status taken before that no longer says how it is.
        self._changed_at: dict[str, float] = {}
        self._token = token
        self._timeouts = {**TIMEOUTS_S, **(timeouts_s or {})}
        self._merged: dict[str, Callable[[Rows, str, dict[str, Any]], Any]] = {
            "status": self._status,
            "pairs": self._pairs,
            "pair": self._pair,
            "close": self._close,
            "health": self._health,
        }

    def __call__(self, cmd: str, args: dict[str, Any]) -> Any:
        """The reply's data for one command (its args already checked); CommandError when it cannot be served."""
        rows = {row["account"]: row for row in self._fleet.status()}
        account = args.get("account")
        if account is not None:
            check_account(account, list(rows))
        try:
            if account is not None:
                return self._one(rows[account], cmd, args)
            return self._merged.get(cmd, self._every)(rows, cmd, args)
        finally:
            if cmd in CHANGING:
                now = self._clock()
                self._changed_at |= dict.fromkeys([account] if account is not None else rows, now)

    # ---- asking ------------------------------------------------------------------------------------------------

    def _ask(self, row: dict[str, Any], cmd: str, args: dict[str, Any]) -> Answer:
        try:
            reply = call(
                row["address"], cmd, args, token=self._token, timeout_s=self._timeouts.get(cmd, DEFAULT_TIMEOUT_S)
            )
        except ControlUnavailableError as exc:
            return Answer(code="unavailable", message=f"account {row['account']} ({row['state']}): {exc}")
        if reply["ok"]:
            return Answer(reply["data"])
        error = reply["error"]
        return Answer(code=str(error.get("code", "internal")), message=str(error.get("message", "failed")))

    def _fan(self, rows: Rows, cmd: str, args: dict[str, Any]) -> dict[str, Answer]:
        """Every worker's answer, asked at once (a slow one delays the reply, not the others' work)."""
        if not rows:
            return {}
        with ThreadPoolExecutor(max_workers=len(rows), thread_name_prefix=f"fan-{cmd}") as pool:
            futures = {name: pool.submit(self._ask, row, cmd, args) for name, row in rows.items()}
            return {name: future.result() for name, future in futures.items()}

    def _one(self, row: dict[str, Any], cmd: str, args: dict[str, Any]) -> Any:
        answer = self._ask(row, cmd, args)
        if not answer.ok:
            raise CommandError(answer.code or "internal", answer.message or "failed")
        return answer.data

    # ---- merging -----------------------------------------------------------------------------------------------

    def _every(self, rows: Rows, cmd: str, args: dict[str, Any]) -> dict[str, Any]:
        """A command for every account: each one's reply, and the ones that did not do it."""
        answers = self._fan(rows, cmd, args)
        return {
            "accounts": {name: a.data for name, a in answers.items() if a.ok},
            "errors": {name: f"{a.message} ({a.code})" for name, a in answers.items() if not a.ok},
        }

    def _status(self, rows: Rows, cmd: str, args: dict[str, Any]) -> dict[str, Any]:
        # Every running worker's status as its last heartbeat took it (the workers keep it current, a heartbeat
        # interval old at most); only a worker without a fresh one is asked now.
        now = self._clock()
        fresh = {
            name: row
            for name, row in rows.items()
            if _fresh(row, self._status_max_age_s, now, self._changed_at.get(name))
        }
        answers = {name: Answer(row["status"]) for name, row in fresh.items()}
        answers |= self._fan({n: r for n, r in rows.items() if n not in fresh}, cmd, args)
        accounts = {
            name: {
                "process": {k: row.get(k) for k in PROCESS_FIELDS},
                "status": answers[name].data if answers[name].ok else None,
                "error": answers[name].message,
            }
            for name, row in rows.items()
        }
        leases = self._leases() if self._leases is not None else []
        return {"fleet": fleet_totals(accounts), "accounts": accounts, "leases": leases}

    def _pairs(self, rows: Rows, cmd: str, args: dict[str, Any]) -> list[dict[str, Any]]:
        answers = self._fan(rows, cmd, args)
        failed = {name: a for name, a in answers.items() if not a.ok}
        if failed:
            # a list missing one account's pairs would read as a complete one
            raise CommandError(
                "unavailable",
                "; ".join(a.message or "failed" for a in failed.values())
                + " (the other accounts' pairs: `pairs --account NAME`)",
            )
        merged = [{"account": name, **pair} for name, a in answers.items() for pair in a.data]
        return sorted(merged, key=lambda p: p["id"], reverse=True)  # ids are the database's: newest first

    def _owner(self, rows: Rows, pair_id: int) -> tuple[str, Any]:
        """The account holding a pair and its `pair` reply; CommandError when none (or more than one) does."""
        answers = self._fan(rows, "pair", {"id": pair_id})
        found = [(name, a.data) for name, a in answers.items() if a.ok]
        if len(found) > 1:  # each worker reads its own account's pairs only: this would be a bug, not a choice
            raise CommandError("internal", f"pair {pair_id} is claimed by accounts {', '.join(n for n, _ in found)}")
        if found:
            return found[0]
        other = [a for a in answers.values() if a.code != "not_found"]
        if other:
            raise CommandError(
                "unavailable",
                f"no pair {pair_id} among the accounts that answered; " + "; ".join(str(a.message) for a in other),
            )
        raise CommandError("not_found", f"no pair {pair_id} in any account")

    def _pair(self, rows: Rows, _cmd: str, args: dict[str, Any]) -> dict[str, Any]:
        name, data = self._owner(rows, args["id"])
        return {**data, "pair": {"account": name, **data["pair"]}}

    def _close(self, rows: Rows, cmd: str, args: dict[str, Any]) -> dict[str, Any]:
        # found first, then closed by its owner alone: a close is never sent to an account that may not own it
        name, _ = self._owner(rows, args["id"])
        return {"account": name, **self._one(rows[name], cmd, args)}

    def _health(self, rows: Rows, _cmd: str, _args: dict[str, Any]) -> dict[str, Any]:
        """From the heartbeats already received (a health check must answer at once, whatever the workers do)."""
        accounts = {}
        for name, row in rows.items():
            snapshot = row.get("last_snapshot") or {}
            running = row["state"] == "running"
            problems = list(snapshot.get("problems", [])) if running else [f"worker {row['state']}"]
            accounts[name] = {
                "state": row["state"],
                "healthy": running and bool(snapshot.get("healthy")),
                "problems": problems,
            }
        return {
            "healthy": bool(accounts) and all(a["healthy"] for a in accounts.values()),
            "accounts": accounts,
            "problems": [f"{name}: {p}" for name, a in accounts.items() for p in a["problems"]],
        }


def _fresh(row: dict[str, Any], max_age_s: float, now: float, changed_at: float | None) -> bool:
    """Whether a worker's status taken with its heartbeats is recent enough to answer `status` with, and was
    taken after the last change made to its account from the control socket (a `pause` shows at once)."""
    age = row.get("status_age_s")
    if row.get("status") is None or age is None or age > max_age_s:
        return False
    return changed_at is None or now - age > changed_at


def fleet_totals(accounts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The fleet's figures from each account's status: workers by state, pairs by state, equity per venue."""
    statuses = [a["status"] for a in accounts.values() if a["status"]]
    pairs: Counter[str] = Counter()
    equity: dict[str, Decimal] = {}
    pnl: Decimal | None = None
    for s in statuses:
        pairs.update({state: int(n) for state, n in s.get("pairs", {}).items()})
        for venue, value in s.get("equity", {}).items():
            amount = _decimal(value)
            if amount is not None:
                equity[venue] = equity.get(venue, Decimal(0)) + amount
        upnl = _decimal(s.get("unrealized_pnl"))
        if upnl is not None:
            pnl = upnl if pnl is None else pnl + upnl
    return {
        "accounts": len(accounts),
        "workers": dict(Counter(a["process"]["state"] for a in accounts.values())),
        "restarts": sum(int(a["process"].get("restarts") or 0) for a in accounts.values()),
        "pairs": dict(pairs),
        # from the counts: a status lists only its newest live pairs (control/commands.py STATUS_OPEN_PAIRS)
        "open_pairs": sum(pairs[state.value] for state in ACTIVE_STATES),
        "equity": {venue: format(v, "f") for venue, v in sorted(equity.items())},
        "unrealized_pnl": None if pnl is None else format(pnl, "f"),
    }


def _decimal(value: Any) -> Decimal | None:
    """Money as the replies carry it (a string); None when it is not a number."""
    if value is None or isinstance(value, bool):
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None
