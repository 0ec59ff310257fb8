"""HedgeCoordinator: opens pairs (both legs at once) and rolls a lone leg back.

The pair is written as OPENING with its client ids before anything is sent, so a crash at any point
leaves a record the Closer can reconcile. A leg is open only when the venue reports its fill.
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
from actors.desk import Desk, LegTrader, LimitBook, Reply, TradingGate, ledger_figures
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
    OrderAccepted,
    OrderRejected,
    PairFailed,
    PairOpened,
    PlaceOrder,
    QuoteReply,
    RecordFills,
    SetLeverage,
    SetTradingMode,
    StatusReply,
    Tick,
    TradingMode,
    TransitionPair,
    UnblockOpening,
    UpdatePosition,
    WriteBatch,
)
from core import failpoints
from core.clock import Clock
from core.config import MarketConfig
from core.domain import EventLevel, OrderPurpose, PairState, Side, Venue
from core.gate import LegGate
from core.ledger import OrderState, PositionState, backoff_s, is_unresolved, leg_book, net_quantity
from core.limits import Trip, check_open, venue_exposure
from core.planning import OpenPlan, PlanDeclined, VenueView, choose_long_venue, choose_market, plan_open
from core.sizing import draw_seconds
from exchanges.base import OrderStatus
from exchanges.errors import VenueError
from storage.records import LegFigures, LegPlan, OrderRecord, PairPlan, PositionRecord

log = logging.getLogger(__name__)

ROLLBACK_ATTEMPTS = 3
DECLINE_RETRY_S = 30
# States in which a leg may be open without its hedge: no new pair while any pair is in one of them.
UNHEDGED_STATES = (PairState.NAKED, PairState.ROLLING_BACK)
SLOT_STATES = (PairState.PLANNED, PairState.OPENING, PairState.OPEN, PairState.CLOSING)


class HedgeCoordinator(SupervisedActor):
    """Decides when to open, plans, sends both legs concurrently, concludes OPEN, FAILED or NAKED."""

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
        self.gate = gate
        self.rng = rng
        self.trading = desk.settings.trading
        self._cooldowns: dict[int, timedelta] = {}
        self._retry_at: datetime | None = None
        self._last_decline = ""
        self.opened = 0
        self.failed = 0

    def handle(self, message: Any) -> Any:
        """Dispatch one message."""
        match message:
            case Tick(now=now):
                self._on_tick(now)
                return None
            case OpenNow(market=market):
                return self.open_pair(market)
            case SetTradingMode(mode=mode, reason=reason):
                if self.gate.set(mode, reason):
                    level = EventLevel.WARNING if mode is TradingMode.PAUSED else EventLevel.INFO
                    self.desk.event(level, f"trading_{mode.value}", f"opening {mode.value}: {reason}")
                return mode
            case BlockOpening(key=key, reason=reason):
                self.gate.block(key, reason)
                return None
            case UnblockOpening(key=key):
                self.gate.unblock(key)
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
        if self.blocked_reason() is not None:
            return
        if self._retry_at is not None and now < self._retry_at:
            return
        until = self._cooldown_until()
        if until is not None and now < until:
            return
        outcome = self.open_pair(None, quiet=True)
        self._retry_at = now + timedelta(seconds=DECLINE_RETRY_S) if isinstance(outcome, OpenDeclined) else None

    def blocked_reason(self) -> str | None:
        """Why no pair may open now, or None."""
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
        """Open one pair now if the rules allow."""
        reason = self.blocked_reason()
        if reason is not None:
            return self._decline(reason, quiet)
        plan = self._plan(market)
        if isinstance(plan, PlanDeclined):
            return self._decline(plan.reason, quiet)
        trip = self._limit_trip(plan)
        if trip is not None:
            self.limits.trip(trip)  # blocks opening until the operator clears it by name
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
            )
        )
        pair_id = begun.pair_id
        if not self.desk.claims.claim(pair_id, self.name):
            raise RuntimeError(f"pair {pair_id} is claimed by another actor at birth")
        try:
            return self._open_legs(pair_id, plan, list(begun.legs), list(begun.orders), decided_ns)
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
        replies = self._send_legs(legs, orders)
        elapsed_ms = int((self.clock.monotonic() - started) * 1000)
        failpoints.hit("open.filled")
        outcome: PairOpened | PairFailed
        if all(_filled(reply, plan.quantity) for reply in replies):
            # The common case: both legs filled in full. Their results, the legs' books and OPEN are one
            # transaction, so nothing stands between the last reply and the commit but that write.
            books = {
                leg.side: [_with_fill(record, reply)] for leg, record, reply in zip(legs, records, replies, strict=True)
            }  # type: ignore[arg-type]
            results = _one_fills_write([w for reply in replies for w in self.trader.writes_for(reply)])
            outcome = self._opened(pair_id, plan, legs, replies, plan.quantity, elapsed_ms, decided_ns, books, results)
        else:
            for reply in replies:
                self.trader.record(reply)
            outcome = self._conclude(pair_id, plan, legs, replies, elapsed_ms, decided_ns)
        timings = self.desk.timings
        timings.record_open(pair_id, timings.open_timing(decided_ns, _orders(replies), time.monotonic_ns()))
        return outcome

    def _send_legs(self, legs: list[PositionRecord], orders: list[PlaceOrder]) -> list[Reply]:
        """Both legs at once: each venue's actor gets its order before either reply is awaited, and each
        order request, once built and signed, waits for the other's so that they leave together."""
        gate = LegGate(len(orders))
        orders = [dataclasses.replace(order, gate=gate) for order in orders]
        futures = [self.desk.ask_venue_async(leg.venue, order) for leg, order in zip(legs, orders, strict=True)]
        return [
            self.trader.finish(leg, order, f, record=False) for leg, order, f in zip(legs, orders, futures, strict=True)
        ]

    def _held(self, leg: PositionRecord) -> tuple[bool, list[OrderRecord]]:
        """Whether every order of the leg has a known outcome, and its orders (read once when they have)."""
        orders = self.desk.repo.orders_for_position(leg.id)
        if not any(is_unresolved(o) for o in orders):
            return True, orders
        resolved = self.trader.resolve(leg)
        return resolved, self.desk.repo.orders_for_position(leg.id)

    def _conclude(
        self,
        pair_id: int,
        plan: OpenPlan,
        legs: list[PositionRecord],
        replies: list[Reply],
        elapsed_ms: int,
        decided_ns: int,
    ) -> PairOpened | PairFailed:
        held = {leg.side: self._held(leg) for leg in legs}
        by_side = {leg.side: leg for leg in legs}
        refusals = "; ".join(
            f"{r.venue} refused the {leg.side} leg: {r.code + ' ' if r.code else ''}{r.message}"
            for leg, r in zip(legs, replies, strict=True)
            if isinstance(r, OrderRejected)
        )
        if not all(resolved for resolved, _ in held.values()):
            return self._naked(pair_id, PairState.OPENING, "the outcome of a leg is unknown after lookups")
        books = {side: orders for side, (_, orders) in held.items()}
        long_q, short_q = net_quantity(books[Side.LONG]), net_quantity(books[Side.SHORT])
        if long_q > 0 and short_q > 0:
            if long_q != short_q:
                books = {}  # the trim changed them: read again
                bigger = Side.LONG if long_q > short_q else Side.SHORT
                self.trader.send(by_side[bigger], OrderPurpose.REPAIR, abs(long_q - short_q))
                long_q = net_quantity(self.desk.repo.orders_for_position(by_side[Side.LONG].id))
                short_q = net_quantity(self.desk.repo.orders_for_position(by_side[Side.SHORT].id))
                if long_q != short_q:
                    return self._naked(
                        pair_id,
                        PairState.OPENING,
                        f"legs filled unequally ({long_q} vs {short_q}) and trimming the larger one failed",
                    )
            return self._opened(pair_id, plan, legs, replies, long_q, elapsed_ms, decided_ns, books)
        self.desk.write(
            TransitionPair(
                pair_id,
                PairState.OPENING,
                PairState.ROLLING_BACK,
                refusals or "a leg did not fill",
                level=EventLevel.WARNING,
            )
        )
        lone = [by_side[s] for s, q in ((Side.LONG, long_q), (Side.SHORT, short_q)) if q > 0]
        for leg in lone:
            if not self._roll_back(leg):
                return self._naked(
                    pair_id,
                    PairState.ROLLING_BACK,
                    f"rolling back the {leg.side} leg on {leg.venue} failed ({refusals})",
                )
        self.failed += 1
        reason = refusals or "no leg filled"
        rolled_back = [leg.venue.value for leg in lone]
        self.desk.write(
            TransitionPair(
                pair_id,
                PairState.ROLLING_BACK,
                PairState.FAILED,
                reason,
                changes={"closed_at": self.clock.now(), "close_reason": reason},
                level=EventLevel.WARNING,
                data={"rolled_back": rolled_back},
            )
        )
        return PairFailed(pair_id, PairState.FAILED, reason)

    def _roll_back(self, leg: PositionRecord) -> bool:
        for attempt in range(ROLLBACK_ATTEMPTS):
            held = net_quantity(self.desk.repo.orders_for_position(leg.id))
            if held == 0:
                return True
            reply = self.trader.send(leg, OrderPurpose.ROLLBACK, held)
            if isinstance(reply, OrderAccepted) and net_quantity(self.desk.repo.orders_for_position(leg.id)) == 0:
                return True
            timings = self.desk.settings.timings
            self.clock.sleep(float(backoff_s(attempt, timings.leg_retry_min_s, timings.leg_retry_max_s)))
        return net_quantity(self.desk.repo.orders_for_position(leg.id)) == 0

    def _naked(self, pair_id: int, expected: PairState, reason: str) -> PairFailed:
        self.failed += 1
        self.desk.write(
            TransitionPair(
                pair_id,
                expected,
                PairState.NAKED,
                reason,
                level=EventLevel.CRITICAL,
                data={"action": "opening blocked until the closer repairs it"},
            )
        )
        return PairFailed(pair_id, PairState.NAKED, reason)

    def _opened(
        self,
        pair_id: int,
        plan: OpenPlan,
        legs: list[PositionRecord],
        replies: list[Reply],
        quantity: Decimal,
        elapsed_ms: int,
        decided_ns: int,
        books: dict[Side, list[OrderRecord]],
        results: list[Any] | None = None,
    ) -> PairOpened:
        now = self.clock.now()
        sent = self.desk.timings.open_timing(decided_ns, _orders(replies))
        marks = {plan.long.venue: plan.long.mark, plan.short.venue: plan.short.mark}
        slippage: dict[str, Decimal] = {}
        fees = Decimal(0)
        updates: list[UpdatePosition] = []
        for leg in legs:
            orders = books.get(leg.side) or self.desk.repo.orders_for_position(leg.id)
            book = leg_book(leg.side, orders)
            fees += book.fees
            if book.entry_price is not None:
                # Positive: paid more than the mark (long) or sold below it (short).
                slippage[leg.venue.value] = leg.side.sign * (book.entry_price - marks[leg.venue]) / marks[leg.venue]
            updates.append(
                UpdatePosition(
                    leg.id, LegFigures(book.held, book.entry_price, fees=book.fees, state=PositionState.OPEN)
                )
            )
        self.opened += 1
        opened = TransitionPair(
            pair_id,
            PairState.OPENING,
            PairState.OPEN,
            f"both legs filled: {quantity} {plan.market}, leverage {plan.leverage}",
            changes={"opened_at": now, "expires_at": now + plan.duration, "quantity": quantity, "fees": fees},
            data={
                "open_ms": elapsed_ms,
                # How long one leg was on the wire without the other, and what the engine added before
                # sending (microseconds, real time).
                "leg_skew_us": _us(sent.leg_skew_ns),
                "to_wire_us": _us(sent.to_wire_ns),
                "slippage": slippage,
                "fees": fees,
                "replies": [type(r).__name__ for r in replies],
            },
        )
        self.desk.write(WriteBatch((*(results or ()), *updates, opened)))  # books and OPEN commit together
        return PairOpened(pair_id)


def _orders(replies: list[Reply]) -> list[tuple[Venue, str]]:
    """The legs' orders (venue, client id), by which their timings are found."""
    return [(r.venue, r.client_id) for r in replies]


def _filled(reply: Reply, quantity: Decimal) -> bool:
    return isinstance(reply, OrderAccepted) and reply.status is OrderStatus.FILLED and reply.filled_quantity == quantity


def _one_fills_write(writes: list[Any]) -> list[Any]:
    """The same writes with every leg's fills in one RecordFills (stored in three statements, not three per
    leg), after the orders they belong to."""
    fills = tuple(f for w in writes if isinstance(w, RecordFills) for f in w.fills)
    others = [w for w in writes if not isinstance(w, RecordFills)]
    return [*others, RecordFills(fills)] if fills else others


def _with_fill(order: OrderRecord, reply: OrderAccepted) -> OrderRecord:
    """The order as it reads once `reply` is recorded (the ledger computed before that write commits)."""
    return dataclasses.replace(
        order,
        status=OrderState(reply.status),
        venue_order_id=reply.venue_order_id,
        filled_quantity=reply.filled_quantity,
        avg_price=reply.average_price,
        fee=reply.fee,
    )


def _us(ns: int | None) -> int | None:
    return None if ns is None else ns // 1000
