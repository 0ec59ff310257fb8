"""`run --canary`: one pair at the venues' minimum size through the real runtime, closed after canary.hold_s.

The runtime runs with opening paused (in memory only, never stored), so its coordinator opens nothing on its own;
the canary lifts the pause for exactly one `OpenNow`, pauses again, holds, closes with the closer's `ClosePair`,
and reads the result from the repository. The size comes from the venues' rules: the smallest quantity both
accept, handed to the unchanged planner as a notional that rounds to it.

Whatever happened (a refused open left NAKED, a timeout, an runtime that stopped mid-hold), once its pair exists
the canary does not stop the runtime until the closer has carried that pair to CLOSED or FAILED and both venues
hold nothing on its two symbols; if that cannot be done in time it says so, naming the pair and what is left.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from actors.messages import (
    ClosePair,
    CloseResult,
    FetchPositions,
    GetQuote,
    GetStatus,
    OpenNow,
    PairFailed,
    PairOpened,
    Positions,
    QuoteReply,
    SetTradingMode,
    TradingMode,
)
from actors.runtime import PAUSE_KEY, STARTUP_BLOCK, Runtime
from core.clock import Clock, SystemClock
from core.config import MarketConfig, Settings
from core.domain import PairState, Venue
from core.ledger import leg_book
from core.planning import VenueView
from live import costs as cost_math
from live import probe
from live.preflight import read_fee_rates, venue_views

log = logging.getLogger(__name__)

STEP_S = 0.05
RECONCILE_WAIT_S = 120.0
OPEN_TIMEOUT_S = 120.0
CLOSE_TIMEOUT_S = 300.0
# How long the canary keeps the runtime turning to flatten a pair that did not end CLOSED or FAILED. Past the
# closer's orphan wait (120 s), so a pair a timeout left mid-open is recovered too.
SETTLE_TIMEOUT_S = 300.0
SETTLED = frozenset({PairState.CLOSED, PairState.FAILED})
CLOSABLE = frozenset({PairState.OPEN, PairState.CLOSING, PairState.NAKED})
# A canary killed mid-hold leaves its pair to the next `run`, which closes it at this expiry.
EXPIRY_GRACE_S = 300


@dataclass
class CanaryReport:
    """What the canary did: whether it opened and closed flat, its lines for a person, and its costs."""

    ok: bool = False
    lines: list[str] = field(default_factory=list)
    costs: cost_math.Costs | None = None
    pair_id: int | None = None
    # The highest pair id before the canary asked for its open: a pair above it is the canary's, even when the
    # open's answer never came (a timeout) and `pair_id` is unknown.
    ids_before_open: int | None = None

    def say(self, line: str) -> None:
        """Add a line (and log it)."""
        log.info("canary: %s", line)
        self.lines.append(line)

    def render(self) -> str:
        """The report for a person."""
        return "\n".join(["canary: " + ("PASS" if self.ok else "FAIL"), *("  " + line for line in self.lines)])


@dataclass(frozen=True, slots=True)
class Sizing:
    """The canary's market, quantity, the notional handed to the planner, and the venues' fee rates."""

    market: MarketConfig
    quantity: Decimal
    notional: Decimal
    rates: dict[Venue, tuple[Decimal, Decimal]]


def size(settings: Settings, clock: Clock) -> Sizing | str:
    """Read the first configured market's rules, marks and the fee rates; the canary's size, or why not."""
    market = settings.trading.markets[0]
    with probe.venues_for(settings, clock) as endpoints:
        backpack, hibachi, _ = probe.clients(endpoints, settings, clock)  # keys: checked by `check`
        try:
            views = {
                Venue.BACKPACK: venue_views(backpack, Venue.BACKPACK, [market.symbol(Venue.BACKPACK)], Decimal(0)),
                Venue.HIBACHI: venue_views(hibachi, Venue.HIBACHI, [market.symbol(Venue.HIBACHI)], Decimal(0)),
            }
            rates = read_fee_rates(backpack, hibachi)
        finally:
            backpack.close()
            hibachi.close()
    found = [v for per in views.values() for v in per.values()]
    problems = [v for v in found if isinstance(v, str)]
    if problems:
        return "; ".join(problems)
    unread = {venue: r for venue, r in rates.items() if isinstance(r, str)}
    if unread:
        return "fee rates not read: " + "; ".join(f"{v}: {r}" for v, r in unread.items())
    read = {venue: r for venue, r in rates.items() if not isinstance(r, str)}
    usable = [v for v in found if isinstance(v, VenueView)]
    quantity = cost_math.minimum_quantity(usable)
    return Sizing(market, quantity, cost_math.planner_notional(quantity, usable), read)


def canary_settings(settings: Settings, sizing: Sizing) -> Settings:
    """The settings the canary's runtime runs with: one market, one pair slot, the canary's notional, an expiry
    past the hold, and no second pair after it."""
    hold_hours = (settings.canary.hold_s + EXPIRY_GRACE_S) / 3600
    trading = settings.trading.model_copy(
        update={
            "markets": (sizing.market,),
            "notional_usd": sizing.notional,
            "max_concurrent_pairs": 1,
            "min_duration_hours": hold_hours,
            "max_duration_hours": hold_hours,
            "cooldown_min_s": Decimal(86400),
            "cooldown_max_s": Decimal(86400),
        }
    )
    return settings.model_copy(update={"trading": trading})


class _Driver:
    """Turns the runtime's main loop by hand, so nothing is ticked while the canary acts."""

    def __init__(self, runtime: Runtime, clock: Clock) -> None:
        self.runtime = runtime
        self.clock = clock

    def turn_for(self, seconds: float, until: Any = None) -> bool:
        """Step the runtime for up to `seconds` (wall time on the clock's monotonic), or until `until()`."""
        end = self.clock.monotonic() + seconds
        while self.clock.monotonic() < end:
            self.runtime.step()
            if self.runtime.fatal is not None:
                raise RuntimeError(self.runtime.fatal)
            if until is not None and until():
                return True
            self.clock.sleep(STEP_S)
        return until is None

    def mids(self, symbols: dict[Venue, str]) -> dict[Venue, Decimal]:
        """Each venue's mid (or mark, without a book) through the runtime's own exchange actors."""
        out: dict[Venue, Decimal] = {}
        for venue, symbol in symbols.items():
            reply: QuoteReply = self.runtime.desk.ask_venue(venue, GetQuote(symbol))
            q = reply.quote
            mid = (q.bid + q.ask) / 2 if q.bid is not None and q.ask is not None else q.mark
            if mid is None:
                raise RuntimeError(f"{venue} quotes no price for {symbol}")
            out[venue] = mid
        return out


def run_canary(settings: Settings, clock: Clock | None = None, rng: random.Random | None = None) -> CanaryReport:
    """Open one minimum-size pair, hold it canary.hold_s, close it, report its costs. Never raises for a venue or
    runtime problem: the report says what went wrong."""
    clock = clock or SystemClock()
    report = CanaryReport()
    sizing = size(settings, clock)
    if isinstance(sizing, str):
        report.say(f"cannot size the canary: {sizing}")
        return report
    report.say(
        f"market {sizing.market.name}: {sizing.quantity} per leg, the smallest both venues accept "
        f"(planner notional {sizing.notional:.2f})"
    )
    runtime = Runtime(canary_settings(settings, sizing), clock, rng=rng)
    kept = runtime.repo.get_meta(PAUSE_KEY)
    if kept is not None:
        report.say(f"opening is paused in this database ({kept}): `resume` it first")
        runtime.db.dispose()
        return report
    driver = _Driver(runtime, clock)
    symbols = {v: sizing.market.symbol(v) for v in settings.trading.venues}
    try:
        try:
            # Paused in memory only (never kept): the coordinator opens nothing on its own.
            runtime.start(paused_reason="canary: opening only on the canary's own request", keep_pause=False)
            _fly(runtime, driver, settings, sizing, report)
        except Exception as exc:
            log.exception("canary failed")
            report.ok = False
            report.say(f"stopped by {type(exc).__name__}: {exc}".splitlines()[0])
        if report.pair_id is None and report.ids_before_open is not None:
            report.pair_id = _pair_after(runtime, report.ids_before_open)
        if report.pair_id is not None:
            # Shutdown stops the actors without closing anything: a pair left open here (a naked leg worst of
            # all) would sit unwatched until the next `run`. Flatten it first, and believe the venues only.
            _settle(runtime, driver, report.pair_id, symbols, report)
    finally:
        runtime.shutdown()
    return report


def _settle(runtime: Runtime, driver: _Driver, pair_id: int, symbols: dict[Venue, str], report: CanaryReport) -> None:
    """Carry the canary's pair to CLOSED or FAILED through the runtime's closer, then require both venues to hold
    nothing on its symbols. A failure clears `ok` and says which pair and what the venues still hold."""
    state: PairState | str = "in an unknown state"
    try:
        state = runtime.repo.get_pair(pair_id).state
        if state not in SETTLED:
            report.ok = False
            report.say(f"pair {pair_id} is {state}: closing it before the canary exits")
            closer = runtime.supervisor.ref("closer")
            if closer is not None and state in CLOSABLE:
                closer.ask(ClosePair(pair_id, "canary: not flat at its end"), timeout=CLOSE_TIMEOUT_S)
            # The closer's own ticks retry a refused close or repair (with its backoff) and recover a pair a
            # timeout left mid-open; the loop must turn for them.
            driver.turn_for(SETTLE_TIMEOUT_S, lambda: runtime.repo.get_pair(pair_id).state in SETTLED)
            state = runtime.repo.get_pair(pair_id).state
            report.say(f"pair {pair_id} now {state}")
    except Exception as exc:
        log.exception("canary: closing pair %s failed", pair_id)
        report.ok = False
        report.say(f"closing pair {pair_id} failed: {type(exc).__name__}: {exc}".splitlines()[0])
    # Read the venues even when closing failed (a stopped runtime's exchange actors may still answer), so the
    # line below names what is left.
    try:
        held = _venue_holdings(runtime, symbols)
    except Exception as exc:
        log.exception("canary: the venues' positions could not be read")
        report.ok = False
        error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        where = ", ".join(f"{v} {symbols[v]}" for v in symbols)
        report.say(
            f"LEFT OPEN? pair {pair_id} ({state}): could not confirm both venues flat ({error}); check {where} by "
            "hand, or `run` to close it"
        )
        return
    left = {venue: qty for venue, qty in held.items() if qty != 0}
    if not left:
        report.say(f"on the venues: flat ({', '.join(f'{v} {symbols[v]} 0' for v in symbols)})")
        return
    report.ok = False
    report.say(
        f"LEFT OPEN: pair {pair_id} ({state}): "
        + ", ".join(f"{venue} {symbols[venue]} {qty:+}" for venue, qty in left.items())
        + " still held on the venue; close it by hand, or `run` to have the closer work on it"
    )


def _pair_after(runtime: Runtime, ids_before: int) -> int | None:
    """The pair the canary's open created, when its answer never came; None if none was (or none is readable)."""
    try:
        return min((p.id for p in runtime.repo.list_pairs() if p.id > ids_before), default=None)
    except Exception:
        log.exception("canary: the pairs could not be read")
        return None


def _venue_holdings(runtime: Runtime, symbols: dict[Venue, str]) -> dict[Venue, Decimal]:
    """Signed quantity each venue reports on the canary's symbol, read through the runtime's exchange actors (as
    the Monitor does): the database says what the farmer booked, this is what the venue holds."""
    held: dict[Venue, Decimal] = {}
    for venue, symbol in symbols.items():
        report: Positions = runtime.desk.ask_venue(venue, FetchPositions())
        held[venue] = sum((p.side.sign * p.quantity for p in report.items if p.symbol == symbol), Decimal(0))
    return held


def _fly(runtime: Runtime, driver: _Driver, settings: Settings, sizing: Sizing, report: CanaryReport) -> None:
    if not driver.turn_for(RECONCILE_WAIT_S, lambda: STARTUP_BLOCK not in runtime.gate.blocks):
        report.say("start-up reconciliation did not finish")
        return
    active = runtime.repo.list_active_pairs()
    if active:
        report.say(f"{len(active)} live pair(s) in the database: the canary starts from a flat book only")
        return
    coordinator = runtime.supervisor.ref("coordinator")
    closer = runtime.supervisor.ref("closer")
    if coordinator is None or closer is None:
        report.say("the coordinator or the closer is not running")
        return
    symbols = {v: sizing.market.symbol(v) for v in settings.trading.venues}
    # Ticks the coordinator still holds were sent while paused; once this answers none is left, and no new one
    # is sent until this thread turns the loop again.
    coordinator.ask(GetStatus(), timeout=OPEN_TIMEOUT_S)
    open_mids = driver.mids(symbols)
    report.ids_before_open = max((p.id for p in runtime.repo.list_pairs()), default=0)
    runtime.tell_coordinator(SetTradingMode(TradingMode.NORMAL, "canary: one pair"), wait=True)
    try:
        outcome = coordinator.ask(OpenNow(sizing.market.name), timeout=OPEN_TIMEOUT_S)
    finally:
        runtime.tell_coordinator(SetTradingMode(TradingMode.PAUSED, "canary: one pair only"), wait=True)
    if isinstance(outcome, PairFailed):
        report.pair_id = outcome.pair_id
        report.say(f"the pair did not open: pair {outcome.pair_id} {outcome.state}: {outcome.reason}")
        return
    if not isinstance(outcome, PairOpened):
        report.say(f"the pair did not open: {getattr(outcome, 'reason', outcome)}")
        return
    pair_id = outcome.pair_id
    report.pair_id = pair_id
    pair = runtime.repo.get_pair(pair_id)
    report.say(
        f"pair {pair_id} OPEN: long {pair.long_venue}, short {pair.short_venue}, {pair.quantity} at leverage "
        f"{pair.leverage}; holding {settings.canary.hold_s} s"
    )
    if pair.quantity != sizing.quantity:
        report.say(f"the planner sized {pair.quantity}, not the minimum {sizing.quantity} (prices moved)")
    driver.turn_for(float(settings.canary.hold_s))
    close_mids = driver.mids(symbols)
    # block=True spelled out: only then do pykka's overloads type the reply as the reply rather than maybe a Future
    result: CloseResult = closer.ask(ClosePair(pair_id, "canary: hold time over"), block=True, timeout=CLOSE_TIMEOUT_S)
    state = result.states.get(pair_id)
    _conclude(runtime, pair_id, state, open_mids, close_mids, sizing, report)


def _conclude(
    runtime: Runtime,
    pair_id: int,
    state: PairState | None,
    open_mids: dict[Venue, Decimal],
    close_mids: dict[Venue, Decimal],
    sizing: Sizing,
    report: CanaryReport,
) -> None:
    repo = runtime.repo
    pair = repo.get_pair(pair_id)
    legs = []
    flat = True
    for leg in repo.positions_for_pair(pair_id):
        book = leg_book(leg.side, repo.orders_for_position(leg.id))
        flat &= book.held == 0
        if book.entry_price is None or book.exit_price is None:
            continue
        legs.append(
            cost_math.LegFills(
                leg.venue,
                leg.side,
                book.opened,
                book.entry_price,
                book.exit_price,
                book.fees,
                open_mids[leg.venue],
                close_mids[leg.venue],
            )
        )
    # The venues are read after this (_settle): ok also needs them to hold nothing.
    report.ok = pair.state is PairState.CLOSED and flat and len(legs) == 2
    report.say(
        f"pair {pair_id} {pair.state} (closer says {state}); both legs flat in the database: {'yes' if flat else 'NO'}"
    )
    if len(legs) != 2:
        return
    c = cost_math.costs(legs, pair.funding or Decimal(0), pair.realized_pnl or Decimal(0), sizing.rates)
    report.costs = c
    per_1m = "n/a" if c.cost_per_1m is None else f"{c.cost_per_1m}"
    report.say(f"volume {c.volume:.2f} USD over 4 fills")
    report.say(f"fees {c.fees:.6f} (the fee schedule, all taker, predicted {c.predicted_fees:.6f})")
    report.say(f"spread and slippage against the mid at each decision {c.spread:.6f}")
    report.say(f"funding {c.funding:.6f}; realized PnL after fees and funding {c.realized_pnl:.6f}")
    report.say(f"cost per 1M of volume {per_1m} USD (all-taker estimate {c.predicted_cost_per_1m})")
