"""Every control command, whole, in one registry: its arguments, its handler (what it does to the running
engine and the JSON it answers) and how a person reads the answer. The socket server, the request parser and
the command line all read `COMMANDS`, so a new command is one `Command(...)` here and its handler.

The command line imports this module to build its parser: modules that load the database layer are imported
inside the handlers that need them, so that `--help` and a configuration error stay quick.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from control.render import pairs_table, per_account, render_pair, render_status
from control.spec import (
    Arg,
    Command,
    CommandError,
    Handler,
    Host,
    account_name,
    check_account,
    limit_name,
    pair_id,
    reason_text,
    state_name,
)
from core.domain import PairState
from core.limits import Limit

if TYPE_CHECKING:
    from storage.records import PairRecord

STATUS_TIMEOUT_S = 5.0
STATUS_OPEN_PAIRS = 20  # 1,000 pairs took 25-45 ms to encode, 50 about 0.6 ms; `pairs --state open` lists all
CLOSE_TIMEOUT_S = 120.0
CLOSE_ALL_TIMEOUT_S = 300.0


# ---- reading -------------------------------------------------------------------------------------------------


def status(host: Host, _args: dict[str, Any]) -> dict[str, Any]:
    """Mode, uptime, actors and restarts, feeds, collateral, pairs by state, recent alerts. Served from what the
    engine keeps in memory (actors/livebook.py): it reads the pairs the writer changed since the last reading,
    and waits for no actor; the newest STATUS_OPEN_PAIRS live pairs are listed (`pairs` lists them all)."""
    from actors.livebook import book_of  # noqa: PLC0415 - see the module's docstring

    now = host.clock.now()
    book = book_of(host.repo.engine)
    book.sync(host.repo, now, wait=not book.loaded)  # never waits for a commit or another reading once loaded
    board = book.board
    monitor = board.published("monitor") if host.supervisor.ref("monitor") is not None else {}
    counts = book.counts()
    gate = host.gate
    return {
        "mode": host.settings.mode.value,
        "paper_prices": host.paper.price_status() if host.paper is not None else None,
        "uptime_s": int((now - host.started_at).total_seconds()) if host.started_at else 0,
        "trading": {"mode": gate.mode.value, "reason": gate.reason, "blocks": gate.blocks},
        "limits": host.limits.rows(),
        "actors": host.supervisor.status(),
        "feeds": monitor.get("feeds", {}),
        "collateral_ratio": monitor.get("collateral_ratio", {}),
        "equity": monitor.get("equity", {}),
        "unrealized_pnl": monitor.get("unrealized_pnl"),
        "monitor_ticks": monitor.get("ticks", 0),
        "pairs": {state.value: counts.get(state, 0) for state in PairState},
        "open_pairs": [pair_row(p.pair) for p in book.live()[:STATUS_OPEN_PAIRS]],
        "alerts": board.alerts(),
        "coordinator": board.actor_status("coordinator", host.supervisor.ref("coordinator")),
        "closer": board.actor_status("closer", host.supervisor.ref("closer")),
    }


def health(host: Host, _args: dict[str, Any]) -> dict[str, Any]:
    """Healthy when the main loop turns, the database took a write lately and answers a read,
    reconciliation is not failing again and again, and every actor is alive."""
    problems = host.health_tracker.problems(host.clock.monotonic())
    try:
        host.repo.count_pairs_by_state()
        database = True
    except Exception as exc:  # noqa: BLE001 - any failure to read is the answer
        database = False
        problems.append(f"the database does not answer a read: {type(exc).__name__}")
    actors = host.supervisor.status()
    problems += [f"actor {name} is down" for name, a in actors.items() if not a["alive"] or a["given_up"]]
    fatal = host.fatal
    if fatal is not None:
        problems.append(fatal)
    return {
        "healthy": not problems,
        "database": database and fatal is None,
        "actors": {name: a["alive"] and not a["given_up"] for name, a in actors.items()},
        "problems": problems,
    }


def render_health(data: dict[str, Any]) -> str:
    """One line: healthy, or what is down (for a fleet, which accounts)."""
    if data["healthy"]:
        return "healthy"
    if "accounts" in data:  # a fleet's: one verdict per account
        return "UNHEALTHY: " + "; ".join(
            f"{name} {a['state']}" + (f" ({', '.join(a['problems'])})" if a["problems"] else "")
            for name, a in data["accounts"].items()
            if not a["healthy"]
        )
    bad = [name for name, up in data["actors"].items() if not up]
    return f"UNHEALTHY: database {'ok' if data['database'] else 'down'}; " + (
        f"actors down: {', '.join(bad)}" if bad else "all actors up"
    )


def pair_row(p: PairRecord) -> dict[str, Any]:
    """One pair as a reply shows it."""
    return {
        "id": p.id,
        "market": p.market,
        "state": p.state.value,
        "long": p.long_venue.value,
        "short": p.short_venue.value,
        "quantity": p.quantity,
        "leverage": p.leverage,
        "notional": p.notional,
        "opened_at": p.opened_at,
        "expires_at": p.expires_at,
        "closed_at": p.closed_at,
        "realized_pnl": p.realized_pnl,
        "fees": p.fees,
        "volume": p.volume,
        "points": p.points,
        "close_reason": p.close_reason,
    }


def pairs(host: Host, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Pairs, newest first, optionally in one state."""
    states = None
    state = args.get("state")
    if state is not None:
        try:
            states = [PairState(state)]
        except ValueError:
            raise CommandError("bad_request", f"unknown state {state!r}; one of {', '.join(PairState)}") from None
    return [pair_row(p) for p in host.repo.list_pairs(states, limit=200)]


def _get_pair(host: Host, pid: int) -> PairRecord:
    from storage.errors import NotFoundError  # noqa: PLC0415 - see the module's docstring

    try:
        return host.repo.get_pair(pid)
    except NotFoundError:
        raise CommandError("not_found", f"no pair {pid}") from None


def pair(host: Host, args: dict[str, Any]) -> dict[str, Any]:
    """One pair with its legs, orders and events."""
    pid: int = args["id"]
    p = _get_pair(host, pid)
    legs = [
        {
            "venue": x.venue.value,
            "symbol": x.symbol,
            "side": x.side.value,
            "quantity": x.quantity,
            "entry_price": x.entry_price,
            "exit_price": x.exit_price,
            "mark_price": x.mark_price,
            "unrealized_pnl": x.unrealized_pnl,
            "realized_pnl": x.realized_pnl,
            "fees": x.fees,
            "leverage_set": x.leverage_set,
            "state": x.state,
        }
        for x in host.repo.positions_for_pair(pid)
    ]
    orders = [
        {
            "venue": o.venue.value,
            "client_id": o.client_id,
            "purpose": o.purpose.value,
            "side": o.side.value,
            "quantity": o.quantity,
            "status": o.status,
            "filled": o.filled_quantity,
            "avg_price": o.avg_price,
            "fee": o.fee,
            "error": o.error,
        }
        for o in host.repo.orders_for_pair(pid)
    ]
    events = [
        {"ts": e.ts, "level": e.level.value, "kind": e.kind, "message": e.message}
        for e in reversed(host.repo.list_events(pid, limit=100))
    ]
    return {"pair": pair_row(p), "legs": legs, "orders": orders, "events": events}


# ---- opening on and off ----------------------------------------------------------------------------------------


def pause(host: Host, args: dict[str, Any]) -> dict[str, Any]:
    """Stop opening new pairs, at once (an open already on the wire finishes) and across restarts."""
    from actors.messages import SetTradingMode, TradingMode  # noqa: PLC0415 - see the module's docstring

    reason = str(args.get("reason") or "paused by operator")
    # Kept first, then told: the coordinator may be busy in an open for seconds, and this answers without waiting
    # for it. It reads the kept pause before it records an open's orders, and a coordinator that is down finds
    # it when it starts again; the message makes it take hold (and be recorded as an event) as soon as it is free.
    host.persist_pause(reason)
    host.tell_coordinator(SetTradingMode(TradingMode.PAUSED, reason, kept=True))
    return {"trading": TradingMode.PAUSED.value, "reason": reason}


def resume(host: Host, args: dict[str, Any]) -> dict[str, Any]:
    """Allow opening again; with `limit`, clear that tripped limit instead (and only it: a trip is never
    cleared by a plain resume, nor the pause by a cleared trip)."""
    from actors.gate import RESUMED  # noqa: PLC0415 - see the module's docstring
    from actors.messages import SetTradingMode, TradingMode  # noqa: PLC0415 - see the module's docstring

    if args.get("limit") is not None:
        limit = Limit(args["limit"])
        cleared = host.limits.clear(limit)
        return {"limit": limit.value, "cleared": cleared is not None, "still_tripped": _tripped(host)}
    host.persist_pause(None)
    host.tell_coordinator(SetTradingMode(TradingMode.NORMAL, RESUMED, kept=True))
    reply: dict[str, Any] = {"trading": TradingMode.NORMAL.value}
    tripped = _tripped(host)
    if tripped:
        reply["still_tripped"] = tripped  # opening stays blocked until each is cleared by name
    return reply


def _tripped(host: Host) -> list[str]:
    return [row["name"] for row in host.limits.rows() if row["tripped"]]


def render_fields(data: dict[str, Any]) -> str:
    """A short reply as `key value` pairs (a fleet's: one line per account)."""
    if "accounts" in data:
        return per_account(data, render_fields)
    return ", ".join(f"{k} {v}" for k, v in data.items())


# ---- closing ------------------------------------------------------------------------------------------------


def close(host: Host, args: dict[str, Any]) -> dict[str, Any]:
    """Close one pair now."""
    from actors.messages import ClosePair  # noqa: PLC0415 - see the module's docstring

    pid: int = args["id"]
    found = _get_pair(host, pid)
    if found.state not in (PairState.OPEN, PairState.CLOSING, PairState.NAKED):
        raise CommandError("bad_state", f"pair {pid} is {found.state}: nothing to close")
    result = host.ask_actor("closer", ClosePair(pid, "closed by operator"), CLOSE_TIMEOUT_S)
    return {"states": {str(k): v.value for k, v in result.states.items()}}


def close_all(host: Host, _args: dict[str, Any]) -> dict[str, Any]:
    """Close every open pair now."""
    from actors.messages import CloseAll  # noqa: PLC0415 - see the module's docstring

    host.alarm("close-all by operator")  # a maker close in progress would hold the closer up to maker_timeout_s
    result = host.ask_actor("closer", CloseAll("close-all by operator"), CLOSE_ALL_TIMEOUT_S)
    return {"states": {str(k): v.value for k, v in result.states.items()}}


def render_states(data: dict[str, Any]) -> str:
    """Each pair's state after a close (a fleet's: under each account)."""
    if "accounts" in data:
        return per_account(data, render_states)
    return "\n".join(f"pair {k}: {v}" for k, v in data["states"].items()) or "nothing to close"


def some_account_failed(data: Any) -> bool:
    """A fleet's reply to a command sent to every account: whether one of them did not do it."""
    return isinstance(data, dict) and bool(data.get("errors"))


# ---- the registry ----------------------------------------------------------------------------------------------

PAIR_ID = Arg("id", pair_id, "pair_id", "pair id", required=True, options={"type": int})
ACCOUNT = Arg("account", account_name, "--account", "only this account (a fleet's supervisor sends it to that one "
              "account's engine); without it, every account", options={"metavar": "NAME"})  # fmt: skip


def engine_account(host: Host) -> str:
    """The account this engine trades (`default` without [[accounts]])."""
    # getattr: Settings.account comes with the fleet's configuration; an engine without it trades `default`
    return str(host.settings.account)


def _scoped(handler: Handler) -> Handler:
    """The handler behind a check of `account`: an engine serves its own account only (the fleet's supervisor
    routes a command by it, and a single engine is account `default`)."""

    def serve(host: Host, args: dict[str, Any]) -> Any:
        rest = dict(args)
        asked = rest.pop("account", None)
        if asked is not None:
            check_account(asked, [engine_account(host)])
        return handler(host, rest)

    serve.__doc__ = handler.__doc__
    return serve


def _for_accounts(c: Command) -> Command:
    """Every command takes `--account`."""
    return replace(c, handler=_scoped(c.handler), args=(*c.args, ACCOUNT))


COMMANDS: dict[str, Command] = {
    c.name: _for_accounts(c)
    for c in (
        Command("status", "show mode, uptime, actors, venues, feeds, equity, open pairs and alerts", status,
                render_status),
        Command("pairs", "list pairs (optionally by state)", pairs, pairs_table,
                args=(Arg("state", state_name, "--state", "only pairs in this state"),)),
        Command("pair", "show one pair with its legs, orders and events", pair, render_pair, args=(PAIR_ID,)),
        Command("pause", "stop opening new pairs (open pairs are still monitored and closed)", pause, render_fields,
                args=(Arg("reason", reason_text, "--reason", "why (shown in status and the event log)"),), slow=True,
                failed=some_account_failed),
        Command("resume", "allow opening new pairs again", resume, render_fields, slow=True,
                failed=some_account_failed, args=(
            Arg("limit", limit_name, "--limit", "clear this tripped limit instead: " + ", ".join(Limit),
                options={"choices": list(Limit), "metavar": "NAME"}),
        )),
        Command("close", "close one pair now", close, render_states, args=(PAIR_ID,), slow=True),
        Command("close-all", "close every open pair now", close_all, render_states, slow=True,
                failed=some_account_failed),
        Command("health", "exit 0 when the engine is up and healthy (for container health checks)", health,
                render_health, reserved=True, failed=lambda data: not data.get("healthy")),
    )
}  # fmt: skip


def command(name: str) -> Command:
    """The command called `name`; CommandError `unknown_command` when there is none."""
    found = COMMANDS.get(name)
    if found is None:
        raise CommandError("unknown_command", f"unknown command {name[:40]!r}; known: {', '.join(COMMANDS)}")
    return found


def render(name: str, data: Any) -> str:
    """A reply's data as text for a person."""
    return COMMANDS[name].render(data)
