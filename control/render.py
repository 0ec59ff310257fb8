"""The longer replies rendered for a person: tables and key lines (each command names its renderer in
control/commands.py). `--json` bypasses this entirely."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any


def table(rows: Sequence[Sequence[Any]], header: Sequence[str]) -> str:
    """A left-aligned text table; None shows as '-'."""
    cells = [[("-" if v is None else str(v)) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines.extend("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells)
    return "\n".join(lines)


def _short_time(value: Any) -> Any:
    return value[:19].replace("T", " ") if isinstance(value, str) else value


def pairs_table(pairs: list[dict[str, Any]]) -> str:
    """Pairs as a table, one row each; a fleet's rows (each with its account) get an account column."""
    if not pairs:
        return "no pairs"
    header = ["id", "market", "state", "long/short", "qty", "lev", "opened", "expires/closed", "pnl", "pts"]
    fleet = any("account" in p for p in pairs)
    rows = [
        (
            *((p.get("account"),) if fleet else ()),
            p["id"],
            p["market"],
            p["state"],
            f"{p['long']}/{p['short']}",
            p["quantity"],
            p["leverage"],
            _short_time(p["opened_at"]),
            _short_time(p["expires_at"] if p["state"] != "closed" else p["closed_at"]),
            p["realized_pnl"],
            p["points"],
        )
        for p in pairs
    ]
    return table(rows, ["account", *header] if fleet else header)


def per_account(data: dict[str, Any], render_one: Callable[[Any], str]) -> str:
    """A fleet's reply from every account: each account's own reply rendered under its name, then the failures."""
    lines: list[str] = []
    for name, one in data["accounts"].items():
        lines += [f"{name}:", *(f"  {line}" for line in render_one(one).splitlines())]
    lines += [f"{name}: FAILED: {message}" for name, message in data.get("errors", {}).items()]
    return "\n".join(lines) or "no accounts"


def _limits_table(limits: list[dict[str, Any]]) -> str:
    rows = [
        (
            x["name"],
            x["limit"],
            x["figure"],
            f"TRIPPED {_short_time(x['since'])}: {x['reason']}" if x["tripped"] else "ok",
        )
        for x in limits
    ]
    return table(rows, ["limit", "value", "now", "state"])


def render_status(d: dict[str, Any]) -> str:
    """The status reply (a fleet's: its totals, its workers, then each account's own status)."""
    if "fleet" in d:
        return render_fleet_status(d)
    lines = [
        f"mode {d['mode']}, up {d['uptime_s']}s, opening {d['trading']['mode']}"
        + (f" ({d['trading']['reason']})" if d["trading"].get("reason") else ""),
        *(f"opening blocked: {reason}" for reason in d["trading"].get("blocks", {}).values()),
        "",
        table(
            [
                (n, "alive" if a["alive"] else "DOWN", a["generation"], a["restarts"], a["last_error"])
                for n, a in d["actors"].items()
            ],
            ["actor", "state", "gen", "restarts", "last error"],
        ),
        "",
    ]
    feeds = d.get("feeds", {})
    ratios = d.get("collateral_ratio", {})
    venue_rows = []
    for venue in sorted(set(feeds) | set(ratios)):
        f = feeds.get(venue, {})
        ages = f.get("ages_s", {})
        venue_rows.append(
            (
                venue,
                "up" if f.get("connected") else "down",
                ", ".join(f.get("stale", [])) or "-",
                max((a for a in ages.values() if a is not None), default=None),
                ratios.get(venue),
            )
        )
    if venue_rows:
        lines += [table(venue_rows, ["venue", "feed", "stale", "oldest s", "collateral ratio"]), ""]
    if d.get("limits"):
        lines += [_limits_table(d["limits"]), ""]
    counts = ", ".join(f"{k} {v}" for k, v in d["pairs"].items() if v)
    lines += [f"pairs: {counts or 'none yet'}", pairs_table(d["open_pairs"]) if d["open_pairs"] else ""]
    if d["alerts"]:
        lines += ["", "recent alerts:"]
        lines += [f"  {_short_time(a['ts'])} {a['level']:<8} {a['message']}" for a in d["alerts"]]
    return "\n".join(lines).rstrip()


def render_pair(d: dict[str, Any]) -> str:
    """One pair with legs, orders and events."""
    p = d["pair"]
    lines = [pairs_table([p]), ""]
    lines.append(
        table(
            [
                (
                    x["venue"],
                    x["side"],
                    x["symbol"],
                    x["quantity"],
                    x["entry_price"],
                    x["exit_price"],
                    x["unrealized_pnl"],
                    x["realized_pnl"],
                    x["fees"],
                    x["state"],
                )
                for x in d["legs"]
            ],
            ["venue", "side", "symbol", "qty", "entry", "exit", "upnl", "pnl", "fees", "state"],
        )
    )
    lines += [
        "",
        table(
            [
                (
                    o["venue"],
                    o["client_id"],
                    o["purpose"],
                    o["side"],
                    o["quantity"],
                    o["status"],
                    o["filled"],
                    o["avg_price"],
                    o["fee"],
                    o["error"],
                )
                for o in d["orders"]
            ],
            ["venue", "client id", "purpose", "side", "qty", "status", "filled", "avg", "fee", "error"],
        ),
    ]
    lines += ["", "events:"] + [f"  {_short_time(e['ts'])} {e['level']:<8} {e['message']}" for e in d["events"]]
    return "\n".join(lines)


def render_fleet_status(d: dict[str, Any]) -> str:
    """A fleet's status: totals, one row per worker process, then each account's status under its name."""
    fleet = d["fleet"]
    counts = ", ".join(f"{k} {v}" for k, v in fleet["pairs"].items() if v)
    equity = ", ".join(f"{venue} {value}" for venue, value in fleet.get("equity", {}).items())
    lines = [
        f"fleet of {fleet['accounts']} accounts: " + ", ".join(f"{n} {s}" for s, n in fleet["workers"].items()),
        f"pairs: {counts or 'none yet'} ({fleet['open_pairs']} live)"
        + (f"; equity {equity}" if equity else "")
        + (f"; unrealized pnl {fleet['unrealized_pnl']}" if fleet.get("unrealized_pnl") is not None else ""),
        "",
        table(
            [
                (
                    name,
                    a["process"]["state"],
                    a["process"]["pid"],
                    a["process"]["restarts"],
                    a["process"]["last_heartbeat_age_s"],
                    a["status"]["trading"]["mode"] if a["status"] else None,
                    sum(a["status"]["pairs"].values()) if a["status"] else None,
                    a["error"] or a["process"].get("last_exit"),
                )
                for name, a in d["accounts"].items()
            ],
            ["account", "process", "pid", "restarts", "heartbeat s", "opening", "pairs", "problem"],
        ),
    ]
    leases = [r for r in d.get("leases", []) if "account" in r]
    if leases:
        rows = [
            (r["account"], r["host"], r["pid"], r["generation"], "expired" if r["expired"] else "held", r["ours"])
            for r in leases
        ]
        lines += ["", "leases (who trades which account, across the fleet):"]
        lines.append(table(rows, ["account", "host", "pid", "generation", "lease", "this host"]))
    for name, a in d["accounts"].items():
        if a["status"]:
            lines += ["", f"== {name} ==", render_status(a["status"])]
    return "\n".join(lines).rstrip()
