"""The pre-flight rules: each takes what was read from a venue (or the database) and returns one CheckResult.

Pure: nothing here reads a venue or a file, so each rule is unit-testable with plain numbers. Sizing and
collateral decisions go through core/planning.py's plan_open, the same code the coordinator opens with.
"""

from __future__ import annotations

import dataclasses
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from core.config import MarketConfig, TradingConfig, UnknownPositions
from core.domain import Venue
from core.planning import OpenPlan, PlanDeclined, VenueView, plan_open

MILLION = Decimal(1_000_000)
# Clocks kept by NTP agree to a few ms; beyond this the venue clients lean on their offset correction alone.
CLOCK_WARN_MS = 1000
FEED_TIMEOUT_S = 5.0
_HEX_KEY = re.compile(r"(0x)?[0-9a-fA-F]{64}")


class Status(StrEnum):
    """pass: fine. warn: works, but look. fail: `run` in live mode refuses to start."""

    PASS = "pass"  # noqa: S105 - a verdict, not a password
    WARN = "warn"
    FAIL = "fail"


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One line of the check: its name, verdict, the numbers behind it and a sentence a person can act on."""

    name: str
    status: Status
    message: str
    numbers: dict[str, str] = field(default_factory=dict)


def _n(**values: object) -> dict[str, str]:
    return {k: str(v) for k, v in values.items() if v is not None}


def worst(results: Sequence[CheckResult]) -> Status:
    """The overall verdict: fail if any failed, else warn if any warned, else pass."""
    statuses = {r.status for r in results}
    for status in (Status.FAIL, Status.WARN):
        if status in statuses:
            return status
    return Status.PASS


def read_failed(name: str, what: str, error: str) -> CheckResult:
    """A read the check depends on failed: the check cannot pass."""
    return CheckResult(name, Status.FAIL, f"could not read {what}: {error}")


# ---- credentials -------------------------------------------------------------------------------------------


def credentials(venue: Venue, error: str | None, read: str) -> CheckResult:
    """One authenticated read (`read`) per venue; `error` is why it was refused, or None."""
    name = f"credentials.{venue.value}"
    if error is not None:
        return CheckResult(name, Status.FAIL, f"{read} was refused: {error}")
    return CheckResult(name, Status.PASS, f"{read} accepted")


def hibachi_key_type(key_type: str | None, hmac_secret: str | None, private_key: str | None) -> CheckResult:
    """The configured key type matches the key given: an HMAC secret is not a 64-hex secp256k1 key, and an ECDSA
    key is one. Hibachi signs writes only, so the venue itself first judges the signature on the first order."""
    name = "credentials.hibachi.key_type"
    if key_type is None:
        return CheckResult(name, Status.FAIL, "hibachi.key_type is not set (hmac or ecdsa; never guessed)")
    if key_type == "hmac":
        if hmac_secret is None:
            return CheckResult(name, Status.FAIL, "hibachi.key_type = hmac but no hibachi.hmac_secret")
        if _HEX_KEY.fullmatch(hmac_secret):
            return CheckResult(
                name,
                Status.FAIL,
                "hibachi.key_type = hmac, but the secret is 64 hex digits: that is a trustless account's ECDSA "
                "private key (set key_type = ecdsa and private_key)",
            )
        return CheckResult(
            name,
            Status.PASS,
            "hmac secret given (Hibachi verifies signatures on writes only: the first order proves it)",
            _n(secret_length=len(hmac_secret)),
        )
    if private_key is None or not _HEX_KEY.fullmatch(private_key):
        return CheckResult(name, Status.FAIL, "hibachi.key_type = ecdsa needs private_key: 64 hex digits")
    return CheckResult(
        name,
        Status.PASS,
        "ecdsa private key given (Hibachi verifies signatures on writes only: the first order proves it)",
    )


# ---- clock -------------------------------------------------------------------------------------------------


def clock(venue: Venue, offset_ms: int, round_trip_ms: int, window_ms: int) -> CheckResult:
    """Our clock against the venue's. `window_ms` is how far a signed request (Backpack's X-Window) or a nonce
    (Hibachi's ±window) may be from the venue's time; the margin is what is left of it after the offset and
    a round trip. The clients correct for the offset, but only between measurements: an offset beyond the
    window means any request signed before a resync is refused."""
    name = f"clock.{venue.value}"
    margin_ms = window_ms - abs(offset_ms) - round_trip_ms
    numbers = _n(offset_ms=offset_ms, round_trip_ms=round_trip_ms, window_ms=window_ms, margin_ms=margin_ms)
    if abs(offset_ms) >= window_ms:
        return CheckResult(
            name,
            Status.FAIL,
            f"our clock is {offset_ms:+d} ms off {venue}'s, beyond its {window_ms} ms window: fix the host's "
            "time (NTP) before trading",
            numbers,
        )
    if round_trip_ms >= window_ms:
        return CheckResult(
            name,
            Status.FAIL,
            f"a round trip to {venue} ({round_trip_ms} ms) outlasts the {window_ms} ms window",
            numbers,
        )
    if abs(offset_ms) >= CLOCK_WARN_MS or margin_ms < window_ms // 2:
        return CheckResult(
            name, Status.WARN, f"clock {offset_ms:+d} ms off {venue}'s; {margin_ms} ms of the window left", numbers
        )
    return CheckResult(name, Status.PASS, f"offset {offset_ms:+d} ms, {margin_ms} ms of the window to spare", numbers)


# ---- markets, sizing and collateral ------------------------------------------------------------------------


def _plan(
    trading: TradingConfig, market: str, views: tuple[VenueView, VenueView], leverage: Decimal
) -> OpenPlan | PlanDeclined:
    """The coordinator's own planning at one fixed leverage (min = max, so the draw is that leverage)."""
    fixed = trading.model_copy(update={"min_leverage": leverage, "max_leverage": leverage})
    return plan_open(random.Random(0), fixed, market, views[0], views[1])  # noqa: S311 - a fixed draw, not a secret


def _unlimited(view: VenueView) -> VenueView:
    return dataclasses.replace(view, available=Decimal("Infinity"))


def market(market: MarketConfig, trading: TradingConfig, views: Mapping[Venue, VenueView | str]) -> CheckResult:
    """The market exists on both venues and its rules (min size, step, min notional, max leverage) allow the
    configured notional at both ends of the leverage range. A str view is why that venue's market is missing."""
    name = f"market.{market.name}"
    missing = [f"{venue}: {v}" for venue, v in views.items() if isinstance(v, str)]
    if missing:
        return CheckResult(name, Status.FAIL, "; ".join(missing))
    found = {venue: v for venue, v in views.items() if not isinstance(v, str)}
    long, short = (_unlimited(found[v]) for v in (Venue.BACKPACK, Venue.HIBACHI))
    results: dict[Decimal, OpenPlan | PlanDeclined] = {
        lev: _plan(trading, market.name, (long, short), lev) for lev in (trading.min_leverage, trading.max_leverage)
    }
    numbers = _n(
        notional_usd=trading.notional_usd,
        **{f"{v.venue.value}_min_quantity": v.min_quantity for v in (long, short)},
        **{f"{v.venue.value}_step": v.step_size for v in (long, short)},
        **{f"{v.venue.value}_max_leverage": v.max_leverage for v in (long, short)},
    )
    declined = [f"at leverage {lev}: {r.reason}" for lev, r in results.items() if isinstance(r, PlanDeclined)]
    if declined:
        return CheckResult(name, Status.FAIL, "; ".join(declined), numbers)
    plan = results[trading.max_leverage]
    assert isinstance(plan, OpenPlan)
    numbers |= _n(quantity=plan.quantity, order_notional=plan.notional)
    return CheckResult(
        name,
        Status.PASS,
        f"{plan.quantity} per leg (notional {plan.notional:.2f}) at leverage "
        f"{trading.min_leverage}..{trading.max_leverage}",
        numbers,
    )


def collateral(
    venue: Venue, available: Decimal, trading: TradingConfig, views: Sequence[tuple[VenueView, VenueView]]
) -> CheckResult:
    """Free collateral on `venue` covers max_concurrent_pairs pairs (one market each, the dearest first) at the
    maximum leverage with the buffer: fail otherwise. A warning when pairs drawn at the minimum leverage would
    be declined. `views` holds each market's (backpack, hibachi) views."""
    name = f"collateral.{venue.value}"
    pairs = trading.max_concurrent_pairs
    share = available / pairs  # each pair must fit in its share of the free collateral

    def needed(leverage: Decimal) -> tuple[Decimal, str | None]:
        worst_need, reason = Decimal(0), None
        for pair in views:
            mine = next(v for v in pair if v.venue is venue)
            other = _unlimited(next(v for v in pair if v.venue is not venue))
            unlimited = _plan(trading, "", (_unlimited(mine), other), leverage)
            if isinstance(unlimited, PlanDeclined):
                continue  # the market check reports sizing problems
            worst_need = max(worst_need, unlimited.quantity * mine.mark / leverage * trading.collateral_buffer * pairs)
            verdict = _plan(trading, "", (dataclasses.replace(mine, available=share), other), leverage)
            if isinstance(verdict, PlanDeclined):
                reason = verdict.reason
        return worst_need, reason

    at_max, fail_reason = needed(trading.max_leverage)
    at_min, warn_reason = needed(trading.min_leverage)
    numbers = _n(
        available=available.quantize(Decimal("0.01")),
        needed_at_max_leverage=at_max.quantize(Decimal("0.01")),
        needed_at_min_leverage=at_min.quantize(Decimal("0.01")),
        pairs=pairs,
        buffer=trading.collateral_buffer,
    )
    if fail_reason is not None:
        return CheckResult(
            name,
            Status.FAIL,
            f"{available:.2f} free does not cover {pairs} pair(s) at leverage {trading.max_leverage}: {fail_reason}",
            numbers,
        )
    if warn_reason is not None:
        return CheckResult(
            name,
            Status.WARN,
            f"pairs drawn near leverage {trading.min_leverage} would be declined: {warn_reason}",
            numbers,
        )
    return CheckResult(name, Status.PASS, f"{available:.2f} free covers {pairs} pair(s) at any drawn leverage", numbers)


# ---- leverage and fees -------------------------------------------------------------------------------------


def leverage(venue: Venue, current: Mapping[str, Decimal | None], scope: str, trading: TradingConfig) -> CheckResult:
    """The leverage set now (per symbol, or account-wide under "*") and what the farmer would set: each pair's
    drawn leverage, on both venues, just before its orders. Information only; nothing is changed here."""
    shown = ", ".join(f"{s} {'venue default' if v is None else v}" for s, v in current.items()) or "none reported"
    what = "the account-wide leverageLimit" if scope == "account" else "each traded symbol's leverage"
    return CheckResult(
        f"leverage.{venue.value}",
        Status.PASS,
        f"now: {shown}; each open sets {what} to its drawn leverage in {trading.min_leverage}..{trading.max_leverage}",
        {k: str(v) for k, v in current.items() if v is not None},
    )


def fees(rates: Mapping[Venue, tuple[Decimal, Decimal] | str]) -> CheckResult:
    """Each venue's (maker, taker) rate and the all-taker cost per 1M USD of volume.

    A pair trades the same quantity on both venues, open and close, so half its volume is on each venue and
    every fill pays its venue's taker rate: cost per 1M = 1,000,000 x (taker_backpack + taker_hibachi) / 2.
    """
    name = "fees"
    unread = [f"{venue}: {r}" for venue, r in rates.items() if isinstance(r, str)]
    if unread:
        return CheckResult(name, Status.WARN, "fee rates not read (" + "; ".join(unread) + ")")
    read = {venue: r for venue, r in rates.items() if not isinstance(r, str)}
    numbers: dict[str, str] = {}
    for venue, (maker, taker) in read.items():
        numbers[f"{venue.value}_maker"] = str(maker.normalize())
        numbers[f"{venue.value}_taker"] = str(taker.normalize())
    cost = all_taker_cost_per_1m(read)
    numbers["all_taker_cost_per_1m"] = str(cost)
    return CheckResult(name, Status.PASS, f"all-taker cost {cost} USD per 1M of volume", numbers)


def all_taker_cost_per_1m(rates: Mapping[Venue, tuple[Decimal, Decimal]]) -> Decimal:
    """1,000,000 x the mean of the venues' taker rates (half of a pair's volume trades on each venue)."""
    takers = [taker for _maker, taker in rates.values()]
    return (MILLION * sum(takers, Decimal(0)) / len(takers)).quantize(Decimal("0.01"))


# ---- what the database does not know -----------------------------------------------------------------------


def positions(
    venue: Venue,
    held: Mapping[str, Decimal],
    expected: Mapping[str, Decimal],
    policy: UnknownPositions,
    settling: Mapping[str, Decimal] | None = None,
) -> CheckResult:
    """Signed quantities per symbol the venue holds against what the database's pairs hold. A difference is a
    position nobody accounts for; `reconcile.unknown_positions` decides what `run` would do with it. `settling`
    maps a symbol with a pair mid-trade (an order whose outcome the database does not know yet, as after a
    crash) to what those pairs' legs could hold there (their planned quantity per leg): start-up reconciliation
    settles a difference within that before anything opens, so it only warns. A larger difference is more than
    the pairs could have traded, so a position nobody accounts for hides in it: that is judged as unknown."""
    name = f"positions.{venue.value}"
    room = settling or {}
    differ = {
        s: held.get(s, Decimal(0)) - expected.get(s, Decimal(0))
        for s in set(held) | set(expected)
        if held.get(s, Decimal(0)) != expected.get(s, Decimal(0))
    }
    unknown = {s: q for s, q in differ.items() if abs(q) > room.get(s, Decimal(0))}
    numbers = {f"{s}_unknown": str(q) for s, q in sorted(unknown.items())}
    if not unknown and differ:
        listed = ", ".join(f"{s} {q:+}" for s, q in sorted(differ.items()))
        return CheckResult(
            name,
            Status.WARN,
            f"the venue differs from the database by {listed}, where a pair is mid-trade: start-up reconciliation "
            "settles it before anything opens",
            {f"{s}_settling": str(q) for s, q in sorted(differ.items())},
        )
    if not unknown:
        return CheckResult(name, Status.PASS, f"{len(held)} position(s), all held by known pairs", numbers)
    listed = ", ".join(f"{s} {q:+}" for s, q in sorted(unknown.items()))
    if policy is UnknownPositions.CLOSE:
        return CheckResult(
            name,
            Status.WARN,
            f"not in the database: {listed}; run would adopt and close it (unknown_positions = close)",
            numbers,
        )
    return CheckResult(
        name,
        Status.FAIL,
        f"not in the database: {listed}; run would raise a critical alert and open nothing until it is gone "
        "(close it on the venue, or set reconcile.unknown_positions = close)",
        numbers,
    )


def orders(venue: Venue, unknown: Sequence[str]) -> CheckResult:
    """Open orders on the venue whose client id the database does not know: the farmer never touches them, and
    one that fills becomes an unknown position."""
    name = f"orders.{venue.value}"
    if not unknown:
        return CheckResult(name, Status.PASS, "no open order the database does not know")
    return CheckResult(
        name,
        Status.WARN,
        f"{len(unknown)} open order(s) the database does not know ({', '.join(unknown[:5])}): the farmer leaves "
        "them alone; a fill would become an unknown position",
        _n(unknown_orders=len(unknown)),
    )


# ---- venue state -------------------------------------------------------------------------------------------


def maintenance(venue: Venue, status: str, normal: str, note: str | None = None) -> CheckResult:
    """The venue's own trading status (Backpack `Ok`, Hibachi `NORMAL`)."""
    name = f"maintenance.{venue.value}"
    if status != normal:
        suffix = f": {note}" if note else ""
        return CheckResult(
            name, Status.FAIL, f"{venue} reports {status}{suffix}; no order can be placed", _n(status=status)
        )
    return CheckResult(name, Status.PASS, f"{venue} reports {status}", _n(status=status))


def feed(venue: Venue, first_quote_s: Mapping[str, float | None], timeout_s: float = FEED_TIMEOUT_S) -> CheckResult:
    """The websocket feed connected and delivered a quote for every market within `timeout_s`."""
    name = f"feed.{venue.value}"
    late = sorted(s for s, t in first_quote_s.items() if t is None or t > timeout_s)
    numbers = {f"{s}_s": f"{t:.3f}" for s, t in first_quote_s.items() if t is not None}
    if late:
        return CheckResult(name, Status.FAIL, f"no quote within {timeout_s:g} s for {', '.join(late)}", numbers)
    slowest = max((t for t in first_quote_s.values() if t is not None), default=0.0)
    return CheckResult(
        name, Status.PASS, f"quotes for {len(first_quote_s)} market(s), slowest {slowest:.2f} s", numbers
    )
