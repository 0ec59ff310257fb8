"""The pre-flight check's I/O: reads the venues (and the database) that `run` would use, and nothing else.

Every call here is a read: no order, no cancel, no leverage change. In paper mode the simulators start from a
copy of the saved paper state, so the check sees what the engine would see without touching its file.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.clock import Clock
from core.config import Mode, Settings
from core.domain import ACTIVE_STATES, PairState, Venue
from core.ledger import is_unresolved, leg_book
from exchanges.backpack import parse as bp_parse
from exchanges.backpack.client import BackpackClient
from exchanges.backpack.feed import backpack_feed
from exchanges.base import Quote
from exchanges.errors import MalformedResponse
from exchanges.hibachi.client import HibachiClient
from exchanges.hibachi.feed import hibachi_feed
from exchanges.hibachi.signing import make_signer
from exchanges.paper import STATE_FILE, PaperVenues
from exchanges.wire import dec
from storage.checks import DatabaseProblem
from storage.db import SchemaVersionError, open_database_readonly
from storage.errors import NotFoundError
from storage.queries import Queries

BACKPACK_NORMAL = "Ok"  # GET /api/v1/status (spec §3)
MID_TRADE = frozenset({PairState.PLANNED, PairState.OPENING, PairState.ROLLING_BACK})


@dataclass(frozen=True, slots=True)
class Endpoints:
    """Where the venues are and the credentials to use there (paper: the simulators' own)."""

    backpack_rest: str
    backpack_ws: str
    backpack_key: str | None
    backpack_secret: str | None
    hibachi_api: str
    hibachi_data: str
    hibachi_ws: str
    hibachi_key: str | None
    hibachi_account: int | None
    hibachi_key_type: str | None
    hibachi_hmac: str | None
    hibachi_private: str | None


def _secret(value: Any) -> str | None:
    return None if value is None else value.get_secret_value()


@contextmanager
def venues_for(settings: Settings, clock: Clock) -> Iterator[Endpoints]:
    """The configured mode's venues: live URLs and keys, or paper simulators started for the check."""
    if settings.mode is Mode.LIVE:
        b, h = settings.backpack, settings.hibachi
        yield Endpoints(
            b.rest_url, b.ws_url, _secret(b.api_key), _secret(b.api_secret),
            h.api_url, h.data_api_url, h.ws_market_url, _secret(h.api_key), h.account_id,
            h.key_type.value if h.key_type else None, _secret(h.hmac_secret), _secret(h.private_key),
        )  # fmt: skip
        return
    scratch = Path(tempfile.mkdtemp(prefix="pf-check-"))
    saved = settings.data_dir / STATE_FILE
    if saved.is_file():
        shutil.copy2(saved, scratch / STATE_FILE)  # the engine's paper state, read from a copy
    # settings.paper too, as the engine passes it: with paper.prices = "live" the check (and the canary's sizing)
    # must read the live-priced simulators `run` would trade on, not the random-walk ones.
    paper = PaperVenues.start(clock, seed=settings.paper.seed, collateral=settings.paper.collateral_usd,
                              state_dir=scratch, paper=settings.paper)  # fmt: skip
    try:
        bsim, hsim = paper.backpack, paper.hibachi
        yield Endpoints(
            bsim.rest_url, bsim.ws_url, bsim.api_key, bsim.api_secret,
            hsim.api_url, hsim.data_api_url, hsim.ws_market_url, hsim.paper.api_key, hsim.paper.account_id,
            "hmac", hsim.paper.hmac_secret, None,
        )  # fmt: skip
    finally:
        paper.stop()
        shutil.rmtree(scratch, ignore_errors=True)


def clients(
    endpoints: Endpoints, settings: Settings, clock: Clock
) -> tuple[BackpackClient, HibachiClient, dict[Venue, str]]:
    """Both venue clients, built as the engine builds them, and why a venue's keys cannot be used (that client is
    then built without them, so its public reads still run)."""
    timeout = float(settings.timings.venue_timeout_s)
    problems: dict[Venue, str] = {}

    def backpack(key: str | None, secret: str | None) -> BackpackClient:
        return BackpackClient(
            endpoints.backpack_rest, key, secret, window_ms=settings.backpack.window_ms, clock=clock,
            read_timeout_s=timeout, requests_per_s=float(settings.backpack.requests_per_s), get_retries=1,
        )  # fmt: skip

    try:
        bp = backpack(endpoints.backpack_key, endpoints.backpack_secret)
    except ValueError as exc:  # BackpackKeyError: the key is not the secret's public key, or not base64
        problems[Venue.BACKPACK] = str(exc)
        bp = backpack(None, None)
    signer = None
    if endpoints.hibachi_key_type is not None:
        try:
            signer = make_signer(
                endpoints.hibachi_key_type, hmac_secret=endpoints.hibachi_hmac, private_key=endpoints.hibachi_private
            )
        except ValueError as exc:  # HibachiKeyError
            problems[Venue.HIBACHI] = str(exc)
    hb = HibachiClient(
        endpoints.hibachi_api, endpoints.hibachi_data, endpoints.hibachi_key, endpoints.hibachi_account, signer,
        clock=clock, nonce_window_s=float(settings.hibachi.nonce_window_s), read_timeout_s=timeout,
        requests_per_s=float(settings.hibachi.requests_per_s), get_retries=1,
    )  # fmt: skip
    return bp, hb, problems


def clock_offset(client: BackpackClient | HibachiClient, clock: Clock) -> tuple[int, int]:
    """(venue minus our clock, round trip) in ms, from one time read."""
    started = clock.monotonic()
    offset_ms = client.sync_time()
    return offset_ms, int((clock.monotonic() - started) * 1000)


# Reads the clients do not offer yet. UNCERTAIN field names follow the spec (backpack.md §3, hibachi.md §3).


def backpack_fees(client: BackpackClient) -> tuple[Decimal, Decimal]:
    """(maker, taker) futures rates as fractions; GET /api/v1/account gives them in bps."""
    data = client._get("/api/v1/account", instruction="accountQuery")
    if not isinstance(data, dict):
        raise MalformedResponse("backpack", "account: expected an object")
    return (
        dec("backpack", data.get("futuresMakerFee"), "futuresMakerFee") / 10000,
        dec("backpack", data.get("futuresTakerFee"), "futuresTakerFee") / 10000,
    )


def backpack_status(client: BackpackClient) -> tuple[str, str | None]:
    """(status, message) from GET /api/v1/status."""
    data = client._request("GET", "/api/v1/status", retry=True)[1]
    if not isinstance(data, dict) or not isinstance(data.get("status"), str):
        raise MalformedResponse("backpack", "status: expected {status, message}")
    message = data.get("message")
    return data["status"], message if isinstance(message, str) else None


def backpack_open_orders(client: BackpackClient) -> list[str]:
    """Client ids (or venue ids, when an order has none) of every open perp order."""
    data = client._get("/api/v1/orders", {"marketType": "PERP"}, instruction="orderQueryAll")
    if not isinstance(data, list):
        raise MalformedResponse("backpack", "orders: expected an array")
    return [o.client_id or f"id:{o.venue_order_id}" for o in (bp_parse.parse_order(item) for item in data)]


def hibachi_account_extras(client: HibachiClient) -> tuple[dict[str, Decimal | None], tuple[Decimal, Decimal] | None]:
    """Per-symbol leverage (1 / initialMarginRate) and the account's own (maker, taker) rates when it has them."""
    data = client._account_info()
    leverages: dict[str, Decimal | None] = {}
    for item in data.get("leverages") or [] if isinstance(data, dict) else []:
        if isinstance(item, dict) and isinstance(item.get("symbol"), str):
            rate = dec("hibachi", item.get("initialMarginRate"), "initialMarginRate")
            leverages[item["symbol"]] = (1 / rate).quantize(Decimal("0.01")) if rate > 0 else None
    maker, taker = (data.get(k) if isinstance(data, dict) else None for k in ("tradeMakerFeeRate", "tradeTakerFeeRate"))
    own = None
    if maker is not None and taker is not None:
        own = (dec("hibachi", maker, "tradeMakerFeeRate"), dec("hibachi", taker, "tradeTakerFeeRate"))
    return leverages, own


def first_quotes(
    endpoints: Endpoints, symbols: dict[Venue, list[str]], clock: Clock, timeout_s: float
) -> dict[Venue, dict[str, float | None]]:
    """Start both websocket feeds; seconds until each symbol's first touch, a bid and an ask (None: none within
    `timeout_s`). A mark alone does not count: the mark stream runs on when the bid/ask stream is dead."""
    started = clock.monotonic()
    arrived: dict[Venue, dict[str, float | None]] = {v: dict.fromkeys(s) for v, s in symbols.items()}
    lock = threading.Lock()
    done = threading.Event()

    def on_quote(venue: Venue) -> Any:
        def record(quote: Quote) -> None:
            if quote.bid is None or quote.ask is None:
                return
            with lock:
                if arrived[venue].get(quote.symbol, 0) is None:
                    arrived[venue][quote.symbol] = clock.monotonic() - started
                if all(t is not None for per in arrived.values() for t in per.values()):
                    done.set()

        return record

    feeds = [
        backpack_feed(endpoints.backpack_ws, symbols[Venue.BACKPACK], clock, on_quote=on_quote(Venue.BACKPACK),
                      reconnect_max_s=1),
        hibachi_feed(endpoints.hibachi_ws, symbols[Venue.HIBACHI], clock, on_quote=on_quote(Venue.HIBACHI),
                     reconnect_max_s=1),
    ]  # fmt: skip
    if not any(symbols.values()):
        return {v: {} for v in symbols}
    for f in feeds:
        f.start()
    try:
        done.wait(timeout_s)
    finally:
        for f in feeds:
            f.stop(timeout_s=2)
    with lock:
        return {v: dict(per) for v, per in arrived.items()}


@dataclass(frozen=True, slots=True)
class Known:
    """What the database accounts for: signed quantities per (venue, symbol) of its live pairs."""

    expected: dict[Venue, dict[str, Decimal]]
    database: str  # where it was read, or why nothing was
    # Symbols with a pair mid-trade (opening or rolling back, or an order whose outcome is not known yet), and
    # how much those pairs' legs could hold there beyond the ledger: their planned quantity per leg, summed.
    settling: dict[Venue, dict[str, Decimal]] = field(default_factory=dict)


def read_database(
    settings: Settings, open_orders: dict[Venue, list[str]], clock: Clock
) -> tuple[Known, dict[Venue, list[str]]]:
    """What the pairs hold, and which of `open_orders` (client ids per venue) the database does not know. Read
    only; a missing database knows nothing."""
    expected: dict[Venue, dict[str, Decimal]] = {v: {} for v in settings.trading.venues}
    url = settings.database_url
    if settings.database.url is None and not (settings.data_dir / "perp-farmer.db").exists():
        return Known(expected, "no database yet: nothing is known"), open_orders
    db = open_database_readonly(url)
    try:
        repo = Queries(db)
        pairs = repo.list_pairs(ACTIVE_STATES)
        settling: dict[Venue, dict[str, Decimal]] = {v: {} for v in settings.trading.venues}
        by_id = {p.id: p for p in pairs}
        for pair_id, legs in repo.legs_with_orders(by_id.keys()).items():
            pair = by_id[pair_id]
            for leg, orders in legs:
                held = leg.side.sign * leg_book(leg.side, orders).held
                per = expected.setdefault(leg.venue, {})
                per[leg.symbol] = per.get(leg.symbol, Decimal(0)) + held
                if pair.state in MID_TRADE or any(is_unresolved(o) for o in orders):
                    room = settling.setdefault(leg.venue, {})
                    room[leg.symbol] = room.get(leg.symbol, Decimal(0)) + pair.quantity
        unknown: dict[Venue, list[str]] = {}
        for venue, ids in open_orders.items():
            unknown[venue] = []
            for client_id in ids:
                try:
                    repo.get_order(venue, client_id)
                except NotFoundError:
                    unknown[venue].append(client_id)
        return Known(expected, f"{len(pairs)} live pair(s) in the database", settling), unknown
    finally:
        db.dispose()


def count_live_pairs(settings: Settings) -> int:
    """How many pairs the database holds in a live state (read only; 0 without a database)."""
    if settings.database.url is None and not (settings.data_dir / "perp-farmer.db").exists():
        return 0
    try:
        db = open_database_readonly(settings.database_url)
    except (DatabaseProblem, SchemaVersionError):
        return 0  # `run` checks the database itself next, and stops there with the reason
    try:
        return len(Queries(db).list_pairs(ACTIVE_STATES))
    finally:
        db.dispose()
