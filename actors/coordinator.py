"""HedgeCoordinator: opens pairs (both legs at once), rolls a lone leg back, and owns the trading gate.

The pair is written as OPENING with its client ids before anything is sent, so a crash at any point
leaves a record the Closer can reconcile. A leg is open only when the venue reports its fill. How an open
ends is decided from its orders' outcomes alone (core/opening.py); what that verdict writes (the outcomes,
the legs' books, the transition) is one transaction, on the same path for OPEN, FAILED and NAKED.

The coordinator is the only writer of the TradingGate: pause, resume, blocks and unblocks reach it as
messages (SetTradingMode, BlockOpening, UnblockOpening), and `sync_gate` brings the gate in line with what
is kept elsewhere (the operator's pause in the database, the limits' trips) for a message that was lost or
has not been handled yet.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from actors.base import DeathCallback, SupervisedActor
from actors.concluder import Concluder, order_keys
from actors.desk import Desk
from actors.gate import PAUSE, RESUMED, GateMessage, TradingGate
from actors.limitbook import LIMIT_PREFIX, LimitBook, ledger_figures
from actors.maker import LegRules, MakerPhase, PhaseResult, maker_side
from actors.messages import (
    AccountReport,
    BeginOpen,
    BlockOpening,
    FetchAccount,
    FetchMarket,
    GetQuote,
    GetStatus,
    LeverageSet,
    MarketRules,
    OpenBegun,
    OpenDeclined,
    OpenNow,
    OrderRejected,
    PairFailed,
    PairOpened,
    PlaceOrder,
    QuoteReply,
    SetLeverage,
    SetTradingMode,
    StatusReply,
    Tick,
    TradingMode,
    UnblockOpening,
)
from actors.trader import LegTrader, Outcome, Reply
from core import failpoints
from core.clock import Clock
from core.config import MarketConfig
from core.domain import EventLevel, OrderPurpose, PairState, Side, Venue
from core.gate import LegGate
from core.limits import Trip, check_open, venue_exposure
from core.making import round_down
from core.planning import OpenPlan, PlanDeclined, VenueView, choose_long_venue, choose_market, plan_open
from core.sizing import draw_seconds
from exchanges.errors import VenueError
from storage.records import LegPlan, OrderRecord, PairPlan, PositionRecord

log = logging.getLogger(__name__)

DECLINE_RETRY_S = 30
# States in which a leg may be open without its hedge: no new pair while any pair is in one of them.
UNHEDGED_STATES = (PairState.NAKED, PairState.ROLLING_BACK)
SLOT_STATES = (PairState.PLANNED, PairState.OPENING, PairState.OPEN, PairState.CLOSING)


class HedgeCoordinator(SupervisedActor):
    """Decides when to open, plans, sends both legs concurrently, concludes OPEN, FAILED or NAKED; the one
    writer of the trading gate."""

    def __init__(
        self,
        name: str,
        generation: int,
        clock: Clock,
        on_death: DeathCallback | None,
        *,
        desk: Desk,
        gate: TradingGate,
        rng: random.Random,
        limits: LimitBook,
    ) -> None:
        super().__init__(name, generation, clock, on_death)
        self.desk = desk
        self.limits = limits
        self.trader = LegTrader(desk)
        self.concluder = Concluder(desk, self.trader, clock)
        self.gate = gate
        self.rng = rng
        self.trading = desk.settings.trading
        self._cooldowns: dict[int, timedelta] = {}
        self._retry_at: datetime | None = None
        self._last_decline = ""
        self.opened = 0
        self.failed = 0
        # Runs in the starting thread (pykka builds the actor there): the gate is in line before `start` returns.
        # Quietly: taking up a kept pause is no change the operator made (and the writer is not waited for here).
        self.sync_gate(announce=False)

    def handle(self, message: Any) -> Any:
        """Dispatch one message."""
        match message:
            case Tick(now=now):
                self._on_tick(now)
                return None
            case OpenNow(market=market):
                return self.open_pair(market)
            case SetTradingMode(mode=mode):
                self._apply(message)
                return mode
            case BlockOpening() | UnblockOpening():
                self._apply(message)
                return None
            case GetStatus():
                return StatusReply(
                    self.name,
                    {
                        "mode": self.gate.mode.value,
                        "reason": self.gate.reason,
                        "opened": self.opened,
                        "failed": self.failed,
                        "last_decline": self._last_decline,
                    },
                )
        return super().handle(message)

    # ---- the gate ---------------------------------------------------------------------------------------

    def _apply(self, message: GateMessage, *, announce: bool = True) -> None:
        """Change the gate; the operator's pause and resume are recorded as events when they change it."""
        changed = self.gate.apply(message)
        if not (changed and announce and isinstance(message, SetTradingMode) and message.kept):
            return
        paused = message.mode is TradingMode.PAUSED
        text = f"opening paused: {message.reason}" if paused else f"opening {message.reason}"
        try:
            self.desk.event(EventLevel.WARNING if paused else EventLevel.INFO, f"trading_{message.mode.value}", text)
        except Exception as exc:  # noqa: BLE001 - the gate has changed all the same; the log keeps the record
            log.warning("event trading_%s not recorded: %r", message.mode.value, exc)

    def sync_gate(self, *, announce: bool = True) -> None:
        """Bring the gate in line with what is kept outside it: the operator's pause (the database) and the
        limits' trips (the LimitBook). Their messages may have been lost (sent while no coordinator ran) or
        still wait in the inbox behind an open; the kept state is the truth either way. `announce`: record a
        pause or resume taken up here as an event."""
        kept = PAUSE.load(self.desk.repo)
        if kept is not None:
            if not (self.gate.paused and self.gate.kept):
                reason = str(kept.get("reason") or "paused before the last stop")
                self._apply(SetTradingMode(TradingMode.PAUSED, reason, kept=True), announce=announce)
        elif self.gate.kept:  # the operator's pause was lifted in the database: a resume we did not hear yet
            self._apply(SetTradingMode(TradingMode.NORMAL, RESUMED, kept=True), announce=announce)
        wanted = self.limits.blocks()
        for key in self.gate.blocks:
            if key.startswith(LIMIT_PREFIX) and key not in wanted:
                self._apply(UnblockOpening(key))
        for key, reason in wanted.items():
            self._apply(BlockOpening(key, reason))

    # ---- when -------------------------------------------------------------------------------------------

    def _cooldown_until(self) -> datetime | None:
        finished = self.desk.repo.list_pairs([PairState.CLOSED, PairState.FAILED], limit=1)
        if not finished:
            return None
        last = finished[0]
        if last.id not in self._cooldowns:
            self._cooldowns[last.id] = draw_seconds(self.rng, self.trading.cooldown_min_s, self.trading.cooldown_max_s)
        return (last.closed_at or last.updated_at) + self._cooldowns[last.id]

    def _on_tick(self, now: datetime) -> None:
        # Blocked (paused, unhedged leg, slots full) is re-checked every tick; a decline by a venue or by the
        # sizing rules waits DECLINE_RETRY_S before the next try, so a venue that is down is not hammered.
        # The gate alone here (no database read each tick): an open about to happen re-reads the kept state.
        if self.blocked_reason(sync=False) is not None:
            return
        if self._retry_at is not None and now < self._retry_at:
            return
        until = self._cooldown_until()
        if until is not None and now < until:
            return
        outcome = self.open_pair(None, quiet=True)
        self._retry_at = now + timedelta(seconds=DECLINE_RETRY_S) if isinstance(outcome, OpenDeclined) else None

    def blocked_reason(self, *, sync: bool = True) -> str | None:
        """Why no pair may open now, or None. With `sync`, the gate is brought in line with the kept pause and
        trips first (`sync_gate`): a pause the operator was told has taken hold is in the database already."""
        if sync:
            self.sync_gate()
        if self.gate.paused:
            return f"opening is paused ({self.gate.reason})"
        blocks = self.gate.blocks
        if blocks:
            return next(iter(blocks.values()))
        active = self.desk.repo.list_active_pairs()
        unhedged = [p.id for p in active if p.state in UNHEDGED_STATES]
        if unhedged:
            return f"pair {unhedged[0]} has an unhedged leg: no new pair until it is repaired"
        used = sum(1 for p in active if p.state in SLOT_STATES)
        if used >= self.trading.max_concurrent_pairs:
            return f"all {self.trading.max_concurrent_pairs} pair slots are in use"
        if {m.name for m in self.trading.markets} <= {p.market for p in active}:
            return "every configured market already has a live pair (one pair per market)"
        return None

    # ---- planning ---------------------------------------------------------------------------------------

    def _view(self, venue: Venue, symbol: str) -> VenueView:
        rules: MarketRules = self.desk.ask_venue(venue, FetchMarket(symbol))
        quote: QuoteReply = self.desk.ask_venue(venue, GetQuote(symbol))
        account: AccountReport = self.desk.ask_venue(venue, FetchAccount())
        if quote.quote.mark is None:
            raise VenueError(venue.value, f"no mark price for {symbol}")
        m = rules.market
        return VenueView(
            venue,
            symbol,
            quote.quote.mark,
            m.step_size,
            m.min_quantity,
            m.min_notional,
            m.max_leverage,
            account.account.available,
            quote.quote.funding_rate,
            quote.quote.bid,
            quote.quote.ask,
            m.tick_size,
        )

    def _plan(self, market_name: str | None) -> OpenPlan | PlanDeclined:
        markets = self.trading.markets
        # One live pair per market: a venue nets every position in a market into one, so two pairs there
        # would offset each other and their reduce-only closes could find nothing to reduce.
        busy = {p.market for p in self.desk.repo.list_active_pairs()}
        if market_name is not None:
            chosen = [m for m in markets if m.name == market_name]
            if not chosen:
                return PlanDeclined(f"unknown market {market_name!r}; configured: {', '.join(m.name for m in markets)}")
            if market_name in busy:
                return PlanDeclined(f"market {market_name} already has a live pair (one pair per market)")
            market: MarketConfig = chosen[0]
        else:
            free = tuple(m for m in markets if m.name not in busy)
            if not free:
                return PlanDeclined("every configured market already has a live pair (one pair per market)")
            market = choose_market(self.rng, free)
        symbols = {venue: market.symbol(venue) for venue in self.trading.venues}
        try:
            views = {venue: self._view(venue, symbol) for venue, symbol in symbols.items()}
        except VenueError as exc:
            return PlanDeclined(f"venue not ready: {exc}")
        long_venue, short_venue = choose_long_venue(
            self.trading.direction_policy, self.rng, {v: views[v].funding_rate for v in views}, self.trading.venues
        )
        return plan_open(self.rng, self.trading, market.name, views[long_venue], views[short_venue])

    def _limit_trip(self, plan: OpenPlan) -> Trip | None:
        """The limit this open would break (notional per venue, opens in the last hour, the day's cost), or None."""
        now = self.clock.now()
        figures = ledger_figures(self.desk.repo, now)
        exposure = venue_exposure(figures.exposure, self.trading.venues)
        cost, opens = figures.daily_cost, figures.opens_last_hour
        return check_open(self.limits.config, now, exposure, plan.notional, opens, cost)

    def _decline(self, reason: str, quiet: bool) -> OpenDeclined:
        if reason != self._last_decline or not quiet:
            self._last_decline = reason
            self.desk.event(EventLevel.INFO, "open_declined", f"no new pair: {reason}")
        return OpenDeclined(reason)

    # ---- opening ----------------------------------------------------------------------------------------

    def open_pair(self, market: str | None, *, quiet: bool = False) -> PairOpened | PairFailed | OpenDeclined:
        """Open one pair now if the rules allow.

        A pause or a limit may come while this runs, and the pause command answers without waiting for this
        actor (it may be busy here for seconds). So the command keeps the pause in the database before it
        answers, a trip is latched in the shared LimitBook before it is written, and the rules are checked again
        after the leverage round trips, right before the orders are recorded, through `blocked_reason`, which
        reads both (`sync_gate`). A pause answered before that check therefore stops this open; one that comes
        after it finds the orders recorded, and the open goes on to its end (an open is never cut in half).
        """
        reason = self.blocked_reason()
        if reason is not None:
            return self._decline(reason, quiet)
        plan = self._plan(market)
        if isinstance(plan, PlanDeclined):
            return self._decline(plan.reason, quiet)
        trip = self._limit_trip(plan)
        if trip is not None:
            self.limits.trip(trip)  # blocks opening until the operator clears it by name
            self.sync_gate()  # the trip's own message waits behind this one: take the block now
            return self._decline(trip.reason, quiet)
        leverage_set: dict[Venue, Decimal] = {}
        for view in (plan.long, plan.short):
            try:
                reply: LeverageSet = self.desk.ask_venue(view.venue, SetLeverage(view.symbol, plan.leverage))
            except VenueError as exc:
                return self._decline(f"{view.venue}: setting leverage {plan.leverage} failed: {exc}", quiet)
            leverage_set[view.venue] = reply.leverage
        # Setting leverage took round trips: a pause, a kill switch or a limit may have come meanwhile.
        reason = self.blocked_reason()
        if reason is not None:
            return self._decline(reason, quiet)
        self._last_decline = ""
        decided_ns = time.monotonic_ns()  # real time: the open's own latency is measured from here
        # One transaction: the pair, its legs, OPENING and both orders exist together before anything is sent.
        begun: OpenBegun = self.desk.write(
            BeginOpen(
                PairPlan(
                    plan.market,
                    LegPlan(plan.long.venue, plan.long.symbol, Side.LONG),
                    LegPlan(plan.short.venue, plan.short.symbol, Side.SHORT),
                    plan.leverage,
                    plan.notional,
                    plan.quantity,
                    int(plan.duration.total_seconds()),
                ),
                tuple(leverage_set.items()),
                tuple((v.venue, v.mid) for v in (plan.long, plan.short) if v.mid is not None),
                self.trading.execution.open.value,
            )
        )
        pair_id = begun.pair_id
        if not self.desk.claims.claim(pair_id, self.name):
            raise RuntimeError(f"pair {pair_id} is claimed by another actor at birth")
        try:
            if begun.orders:
                return self._open_legs(pair_id, plan, list(begun.legs), list(begun.orders), decided_ns)
            return self._open_making(pair_id, plan, list(begun.legs), decided_ns)
        finally:
            self.desk.claims.release(pair_id)

    def _open_legs(
        self, pair_id: int, plan: OpenPlan, legs: list[PositionRecord], records: list[OrderRecord], decided_ns: int
    ) -> PairOpened | PairFailed:
        orders = [self.trader.message_for(leg, record) for leg, record in zip(legs, records, strict=True)]
        failpoints.hit("open.recorded")
        if failpoints.armed("open.between_legs"):  # the first leg done, the second never sent
            self.trader.finish(legs[0], orders[0], self.desk.ask_venue_async(legs[0].venue, orders[0]))
            failpoints.hit("open.between_legs")
        started = self.clock.monotonic()
        outcomes = self._send_legs(legs, records, orders)
        elapsed_ms = int((self.clock.monotonic() - started) * 1000)
        failpoints.hit("open.filled")
        result = self.concluder.conclude(pair_id, plan, legs, outcomes, elapsed_ms, decided_ns)
        if isinstance(result, PairOpened):
            self.opened += 1
        else:
            self.failed += 1
        timings = self.desk.timings
        keys = order_keys([o.reply for o in outcomes])
        timings.record_open(pair_id, timings.open_timing(decided_ns, keys, time.monotonic_ns()))
        return result

    def _open_making(
        self, pair_id: int, plan: OpenPlan, legs: list[PositionRecord], decided_ns: int
    ) -> PairOpened | PairFailed:
        """A maker style's open (actors/maker.py): the phase rests and hedges; what it leaves of the quantity goes
        taker on both legs at once; the books then decide, as for a taker open (trim, roll back, NAKED)."""
        style = self.trading.execution.open
        started = self.clock.monotonic()
        by_side = {leg.side: leg for leg in legs}
        views = {Side.LONG: plan.long, Side.SHORT: plan.short}
        rules = {
            s: LegRules(v.step_size, v.min_quantity, v.tick_size or v.step_size, v.min_notional)
            for s, v in views.items()
        }
        why = ""
        try:
            phase = MakerPhase(
                self.desk, self.trader, pair_id=pair_id, legs=by_side, purpose=OrderPurpose.OPEN,
                target=plan.quantity, style=style, maker_side=maker_side(self.desk, style, by_side), rules=rules,
                price=plan.long.mid or plan.long.mark,
            ).run()  # fmt: skip
            why = f"maker phase: {phase.reason}"
        except VenueError as exc:  # before anything rested (fees or quotes not read): all of it goes taker
            phase = PhaseResult({Side.LONG: Decimal(0), Side.SHORT: Decimal(0)}, f"maker phase not run: {exc}")
            why = phase.reason
        replies: list[Reply] = []
        price = plan.long.mid or plan.long.mark
        step = max(r.step for r in rules.values())
        # Each leg's own rest, so both end at the planned quantity: a finer venue's partial fills may have left
        # the legs a hair apart, and the phase kept a floor back so that each rest is an order a venue takes.
        rests = {leg.side: round_down(plan.quantity - phase.done[leg.side], rules[leg.side].step) for leg in legs}
        floors = {side: rules[side].floor(price, step) for side in rules}
        # Sent even when the engine is stopping: both legs at once leave the pair level, where a trim of a hair
        # left by the phase could be refused.
        if not phase.unresolved and all(rests[s] >= floors[s] for s in rests):
            rows, orders = [], []
            for leg in legs:
                order = self.trader.prepare(leg, OrderPurpose.OPEN, rests[leg.side])
                orders.append(order)
                rows.append(self.desk.repo.get_order(leg.venue, order.client_id))
            sent = self._send_legs(legs, rows, orders)
            outcomes = [self.trader.settled(leg, o) for leg, o in zip(legs, sent, strict=True)]
            for outcome in outcomes:
                self.trader.commit(outcome)
            replies = [o.reply for o in outcomes]
            refused = [f"{r.venue} refused the rest: {r.message}" for r in replies if isinstance(r, OrderRejected)]
            why = "; ".join([why, *refused])
        elapsed_ms = int((self.clock.monotonic() - started) * 1000)
        result = self.concluder.conclude_recorded(pair_id, plan, legs, replies, elapsed_ms, decided_ns, why)
        if isinstance(result, PairOpened):
            self.opened += 1
        else:
            self.failed += 1
        return result

    def _send_legs(
        self, legs: list[PositionRecord], records: list[OrderRecord], orders: list[PlaceOrder]
    ) -> list[Outcome]:
        """Both legs at once: each venue's actor gets its order before either reply is awaited, and each
        order request, once built and signed, waits for the other's so that they leave together."""
        gate = LegGate(len(orders))
        orders = [dataclasses.replace(order, gate=gate) for order in orders]
        futures = [self.desk.ask_venue_async(leg.venue, order) for leg, order in zip(legs, orders, strict=True)]
        return [
            self.trader.outcome(leg, record, order, f)
            for leg, record, order, f in zip(legs, records, orders, futures, strict=True)
        ]
