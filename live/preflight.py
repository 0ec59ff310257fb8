"""`supervisor.py check`: read the configured mode's venues and the database, run every rule, print the verdicts.

Read-only by construction: the probe only reads (no order, no cancel, no leverage change). Exit 0 when nothing
failed (warnings allowed), 1 otherwise.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from functools import partial
from typing import Any

from core.clock import Clock, SystemClock
from core.config import Settings
from core.domain import Venue
from core.logs import Scrubber
from core.planning import VenueView
from exchanges.backpack.client import BackpackClient
from exchanges.errors import VenueError
from exchanges.hibachi.client import HibachiClient
from exchanges.hibachi.parse import NORMAL as HIBACHI_NORMAL
from live import probe, rules
from live.rules import CheckResult, Status
from storage.checks import DatabaseProblem
from storage.db import SchemaVersionError

Client = BackpackClient | HibachiClient


def _error(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0]


def _try(read: Callable[[], Any]) -> tuple[Any, str | None]:
    try:
        return read(), None
    except (VenueError, OSError, ValueError) as exc:
        return None, _error(exc)


# The venues whose own reads (fees, leverage, status, open orders) the pre-flight check knows.
CHECKED = (Venue.BACKPACK, Venue.HIBACHI)


def _symbols(settings: Settings) -> dict[Venue, list[str]]:
    return {v: [m.symbol(v) for m in settings.trading.markets] for v in CHECKED}


def venue_views(client: Client, venue: Venue, symbols: list[str], available: Decimal) -> dict[str, VenueView | str]:
    """Each configured symbol's rules and mark as the coordinator sees them, or why it cannot be traded."""
    listed, error = _try(client.markets)
    if error is not None:
        return dict.fromkeys(symbols, f"markets not read: {error}")
    by_symbol = {m.symbol: m for m in listed}
    views: dict[str, VenueView | str] = {}
    for symbol in symbols:
        m = by_symbol.get(symbol)
        if m is None:
            views[symbol] = f"{symbol} is not listed as a live perp market"
            continue
        quote, error = _try(partial(client.quote, symbol))
        if error is not None or quote.mark is None:
            views[symbol] = f"{symbol}: no mark price ({error or 'none quoted'})"
            continue
        views[symbol] = VenueView(
            venue, symbol, quote.mark, m.step_size, m.min_quantity, m.min_notional, m.max_leverage, available,
            quote.funding_rate,
        )  # fmt: skip
    return views


def run_checks(
    settings: Settings, clock: Clock | None = None, feed_timeout_s: float = rules.FEED_TIMEOUT_S
) -> list[CheckResult]:
    """Every check against the configured mode's venues, in a fixed order."""
    clock = clock or SystemClock()
    if set(settings.trading.venues) != set(CHECKED):
        # Its venue reads (fees, leverage, status, open orders) are Backpack's and Hibachi's own.
        traded = f"trading.venues = [{', '.join(settings.trading.venues)}]"
        return [rules.read_failed("venues", traded, "the pre-flight check knows backpack and hibachi only")]
    with probe.venues_for(settings, clock) as endpoints:
        backpack, hibachi, key_problems = probe.clients(endpoints, settings, clock)
        try:
            return _checks(settings, clock, endpoints, (backpack, hibachi), key_problems, feed_timeout_s)
        finally:
            backpack.close()
            hibachi.close()


def _checks(
    settings: Settings,
    clock: Clock,
    endpoints: probe.Endpoints,
    venue_pair: tuple[BackpackClient, HibachiClient],
    key_problems: dict[Venue, str],
    feed_timeout_s: float,
) -> list[CheckResult]:
    backpack, hibachi = venue_pair
    trading = settings.trading
    out: list[CheckResult] = []
    venue_clients: dict[Venue, Client] = {Venue.BACKPACK: backpack, Venue.HIBACHI: hibachi}
    windows = {Venue.BACKPACK: settings.backpack.window_ms, Venue.HIBACHI: int(settings.hibachi.nonce_window_s * 1000)}

    # Clock first: the signed reads below are signed on the offset it measures.
    for venue, client in venue_clients.items():
        measured, error = _try(partial(probe.clock_offset, client, clock))
        if error is not None:
            out.append(rules.read_failed(f"clock.{venue.value}", "the venue's time", error))
        else:
            out.append(rules.clock(venue, measured[0], measured[1], windows[venue]))

    accounts: dict[Venue, Any] = {}
    reads = {Venue.BACKPACK: "the signed collateral query", Venue.HIBACHI: "GET /trade/account/info"}
    for venue, client in venue_clients.items():
        accounts[venue], error = _try(client.account)
        if venue in key_problems:
            accounts[venue], error = None, f"the configured key cannot be used: {key_problems[venue]}"
        out.append(rules.credentials(venue, error, reads[venue]))
    out.append(rules.hibachi_key_type(endpoints.hibachi_key_type, endpoints.hibachi_hmac, endpoints.hibachi_private))

    symbols = _symbols(settings)
    available = {v: (a.available if a is not None else Decimal(0)) for v, a in accounts.items()}
    views = {v: venue_views(c, v, symbols[v], available[v]) for v, c in venue_clients.items()}
    pairs_of_views: list[tuple[VenueView, VenueView]] = []
    for m in trading.markets:
        mine = {v: views[v][m.symbol(v)] for v in CHECKED}
        out.append(rules.market(m, trading, mine))
        bp, hb = mine[Venue.BACKPACK], mine[Venue.HIBACHI]
        if isinstance(bp, VenueView) and isinstance(hb, VenueView):
            pairs_of_views.append((bp, hb))
    for venue in CHECKED:
        if accounts[venue] is None:
            out.append(rules.read_failed(f"collateral.{venue.value}", "the account", "credentials refused"))
        else:
            out.append(rules.collateral(venue, available[venue], trading, pairs_of_views))

    out.extend(_leverage_and_fees(settings, backpack, hibachi))
    out.extend(_unknowns(settings, clock, backpack, hibachi))
    out.extend(_maintenance(backpack, hibachi))
    # Only markets the venue lists are awaited: a missing one already failed its market check.
    listed = {v: [s for s in symbols[v] if isinstance(views[v][s], VenueView)] for v in CHECKED}
    arrived = probe.first_quotes(endpoints, listed, clock, feed_timeout_s)
    out.extend(rules.feed(venue, per, feed_timeout_s) for venue, per in arrived.items())
    return out


def _leverage_and_fees(settings: Settings, backpack: BackpackClient, hibachi: HibachiClient) -> list[CheckResult]:
    out: list[CheckResult] = []
    trading = settings.trading
    limit, error = _try(backpack.leverage_limit)
    if error is not None:
        out.append(rules.read_failed("leverage.backpack", "the account's leverageLimit", error))
    else:
        out.append(rules.leverage(Venue.BACKPACK, {"leverageLimit": limit}, backpack.leverage_scope, trading))
    extras, error = _try(lambda: probe.hibachi_account_extras(hibachi))
    if error is not None:
        out.append(rules.read_failed("leverage.hibachi", "the account's leverages", error))
        extras = ({}, None)
    traded = [m.symbol(Venue.HIBACHI) for m in trading.markets]
    current = {s: extras[0].get(s) for s in traded}
    out.append(rules.leverage(Venue.HIBACHI, current, hibachi.leverage_scope, trading))

    out.append(rules.fees(read_fee_rates(backpack, hibachi, extras[1])))
    return out


def read_fee_rates(
    backpack: BackpackClient, hibachi: HibachiClient, hibachi_own: tuple[Decimal, Decimal] | None = None
) -> dict[Venue, tuple[Decimal, Decimal] | str]:
    """Each venue's (maker, taker) rate, or why it was not read. Hibachi's account rates (`hibachi_own`, or read
    here) win over its exchange-wide schedule."""
    rates: dict[Venue, tuple[Decimal, Decimal] | str] = {}
    bp_rates, error = _try(lambda: probe.backpack_fees(backpack))
    rates[Venue.BACKPACK] = bp_rates if error is None else error
    if hibachi_own is None:
        extras, _ = _try(lambda: probe.hibachi_account_extras(hibachi))
        hibachi_own = extras[1] if extras is not None else None
    if hibachi_own is not None:
        rates[Venue.HIBACHI] = hibachi_own
    else:
        info, error = _try(hibachi.exchange_info)
        rates[Venue.HIBACHI] = (info.maker_fee, info.taker_fee) if error is None else error
    return rates


def _unknowns(settings: Settings, clock: Clock, backpack: BackpackClient, hibachi: HibachiClient) -> list[CheckResult]:
    out: list[CheckResult] = []
    held: dict[Venue, dict[str, Decimal] | str] = {}
    for venue, client in ((Venue.BACKPACK, backpack), (Venue.HIBACHI, hibachi)):
        listed, error = _try(client.positions)
        if error is not None:
            held[venue] = error
            continue
        per: dict[str, Decimal] = {}
        for p in listed:
            per[p.symbol] = per.get(p.symbol, Decimal(0)) + p.side.sign * p.quantity
        held[venue] = per
    open_orders, order_errors = _open_orders(backpack, hibachi)
    try:
        known, unknown_orders = probe.read_database(settings, open_orders, clock)
    except (DatabaseProblem, SchemaVersionError) as exc:
        return [rules.read_failed("database", "the database (read-only)", str(exc))]
    for venue in CHECKED:
        venue_held = held[venue]
        if isinstance(venue_held, str):
            out.append(rules.read_failed(f"positions.{venue.value}", "positions", venue_held))
        else:
            policy = settings.reconcile.unknown_positions
            settling = known.settling.get(venue, {})
            out.append(rules.positions(venue, venue_held, known.expected[venue], policy, settling))
        if venue in order_errors:
            out.append(rules.read_failed(f"orders.{venue.value}", "open orders", order_errors[venue]))
        else:
            out.append(rules.orders(venue, unknown_orders.get(venue, [])))
    return out


def _open_orders(backpack: BackpackClient, hibachi: HibachiClient) -> tuple[dict[Venue, list[str]], dict[Venue, str]]:
    """Client ids of each venue's open orders, and why a venue's could not be read."""
    reads: dict[Venue, Callable[[], list[str]]] = {
        Venue.BACKPACK: lambda: probe.backpack_open_orders(backpack),
        Venue.HIBACHI: lambda: [o.client_id or f"id:{o.venue_order_id}" for o in hibachi.open_orders()],
    }
    found: dict[Venue, list[str]] = {}
    errors: dict[Venue, str] = {}
    for venue, read in reads.items():
        ids, error = _try(read)
        if error is None:
            found[venue] = ids
        else:
            errors[venue] = error
    return found, errors


def _maintenance(backpack: BackpackClient, hibachi: HibachiClient) -> list[CheckResult]:
    out: list[CheckResult] = []
    status, error = _try(lambda: probe.backpack_status(backpack))
    if error is not None:
        out.append(rules.read_failed("maintenance.backpack", "GET /api/v1/status", error))
    else:
        out.append(rules.maintenance(Venue.BACKPACK, status[0], probe.BACKPACK_NORMAL, status[1]))
    info, error = _try(lambda: hibachi.exchange_info(max_age_s=0))
    if error is not None:
        out.append(rules.read_failed("maintenance.hibachi", "exchange-info", error))
    else:
        out.append(rules.maintenance(Venue.HIBACHI, info.status, HIBACHI_NORMAL, info.maintenance_note))
    return out


# ---- output ------------------------------------------------------------------------------------------------


def as_json(results: list[CheckResult], scrubber: Scrubber | None = None) -> str:
    """One object: the overall status and every check with its name, status, numbers and message. With a
    scrubber, value by value before encoding (as the JSON log format does), then the text itself."""
    payload: Any = {
        "status": rules.worst(results).value,
        "checks": [
            {"name": r.name, "status": r.status.value, "numbers": r.numbers, "message": r.message} for r in results
        ],
    }
    if scrubber is None:
        return json.dumps(payload, indent=2)
    return scrubber.scrub(json.dumps(scrubber.scrub_value(payload), indent=2))


def as_lines(results: list[CheckResult]) -> str:
    """One line per check: verdict, name, message and numbers; then the overall verdict."""
    width = max((len(r.name) for r in results), default=0)
    lines = []
    for r in results:
        numbers = " ".join(f"{k}={v}" for k, v in r.numbers.items())
        lines.append(
            f"{r.status.value.upper():4}  {r.name:{width}}  {r.message}" + (f"  [{numbers}]" if numbers else "")
        )
    failed = sum(r.status is Status.FAIL for r in results)
    warned = sum(r.status is Status.WARN for r in results)
    lines.append(f"{rules.worst(results).value}: {len(results)} checks, {failed} failed, {warned} warnings")
    return "\n".join(lines)


def exit_status(results: list[CheckResult]) -> int:
    """0 when nothing failed (warnings allowed), 1 otherwise."""
    return 1 if rules.worst(results) is Status.FAIL else 0
