"""Monitor: every tick, marks, PnL per leg, collateral ratio per venue, divergence, feed freshness, and
whether the venues hold what the database says. Raises events when a condition starts and when it clears.

A leg that the venue no longer holds (liquidated, closed by hand) turns its OPEN pair NAKED, after two
ticks in a row agree, so an order filling between two reads is never mistaken for it.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Hashable
from datetime import datetime
from decimal import Decimal
from typing import Any

import pykka

from actors.base import DeathCallback, SupervisedActor
from actors.desk import Desk
from actors.gate import TradingGate
from actors.limitbook import LimitBook, ledger_figures
from actors.messages import (
    AccountReport,
    BlockOpening,
    CreatePair,
    FeedState,
    FetchAccount,
    FetchPositions,
    GetFeedState,
    GetQuote,
    GetStatus,
    LimitBreached,
    Positions,
    QuoteReply,
    ReconcilePositions,
    ReconcileReport,
    RecordSnapshot,
    StatusReply,
    Tick,
    TransitionPair,
    UnblockOpening,
    UpdatePosition,
    WriteBatch,
)
from actors.trader import LegTrader
from core.clock import Clock
from core.config import UnknownPositions
from core.domain import ACTIVE_STATES, EventLevel, OrderPurpose, PairState, Side, Venue
from core.ledger import is_unresolved, leg_book
from core.limits import (
    Limit,
    Trip,
    check_collateral,
    check_daily_cost,
    check_drawdown,
    check_naked,
    pair_to_shed,
    total_equity,
    venue_exposure,
    weakest_venue,
)
from core.risk import collateral_ratio, liquidation_distance, pnl_divergence, unrealized_pnl
from storage.errors import TransitionRefusedError
from storage.records import LegFigures, LegPlan, OrderRecord, PairPlan, PairRecord, PositionRecord

log = logging.getLogger(__name__)

WATCHED_STATES = (PairState.OPEN, PairState.CLOSING, PairState.NAKED)
MISMATCH_TICKS = 2
Key = tuple[Venue, str]
Expected = tuple[dict[Key, Decimal], set[Key], dict[Key, list[PairRecord]]]


class Monitor(SupervisedActor):
    """Reads the venues and the database, records snapshots, raises alerts."""

    def __init__(
        self,
        name: str,
        generation: int,
        clock: Clock,
        on_death: DeathCallback | None,
        *,
        desk: Desk,
        gate: TradingGate,
        limits: LimitBook,
    ) -> None:
        super().__init__(name, generation, clock, on_death)
        self.desk = desk
        self.limits = limits
        self._forced: set[int] = set()  # NAKED pairs already sent to the closer for the naked-leg limit
        self.trading = desk.settings.trading
        self.venues = self.trading.venues
        self.stale_after_s = float(desk.settings.monitor.feed_stale_after_s)
        self._active: set[Hashable] = set()
        self._mismatch: dict[tuple[Venue, str], int] = {}
        self._adopted: set[tuple[Venue, str]] = set()
        self._equity: dict[Venue, Decimal] = {}
        self._last_positions: dict[Venue, Positions | None] = {}
        self.gate = gate
        self.policy = desk.settings.reconcile.unknown_positions
        self.summary: dict[str, Any] = {}
        self.ticks = 0

    def handle(self, message: Any) -> Any:
        """Dispatch one message."""
        match message:
            case Tick(now=now):
                self.check(now)
                return None
            case ReconcilePositions():
                before = self._expected()
                positions = self._positions()
                found = self._reconcile(positions, before, self._expected(), threshold=1)
                return ReconcileReport(all(p is not None for p in self._last_positions.values()), tuple(found))
            case GetStatus():
                return StatusReply(self.name, {"ticks": self.ticks, **self.summary})
        return super().handle(message)

    # ---- alerts -----------------------------------------------------------------------------------------

    def _episode(
        self,
        key: Hashable,
        active: bool,
        level: EventLevel,
        kind: str,
        message: str,
        pair_id: int | None = None,
        **data: Any,
    ) -> None:
        """An event when a condition starts, and an info event when it clears; nothing while it lasts."""
        if active and key not in self._active:
            self._active.add(key)
            self.desk.event(level, kind, message, pair_id, **data)
        elif not active and key in self._active:
            self._active.discard(key)
            self.desk.event(EventLevel.INFO, f"{kind}_cleared", f"cleared: {kind} ({key})", pair_id)

    # ---- the tick ---------------------------------------------------------------------------------------

    def check(self, now: datetime) -> None:
        """One full reading."""
        self.ticks += 1
        ratios = self._accounts()
        feeds = self._feeds()
        before = self._expected()
        positions = self._positions()
        after = self._expected()
        pairs = self.desk.repo.list_pairs(WATCHED_STATES)
        books = self.desk.repo.legs_with_orders(p.id for p in pairs)
        writes: list[Any] = []
        readings = [self._pair(p, books.get(p.id, []), ratios, positions, writes) for p in pairs]
        if writes:  # marks and snapshots of the whole tick in one transaction, not three per pair
            self.desk.directory.get("writer").tell(WriteBatch(tuple(writes)))
        self._reconcile(positions, before, after)
        self._adopted &= set(self._mismatch)
        self._watch_limits(now, ratios)
        self.summary = {
            "at": now.isoformat(),
            "collateral_ratio": {
                v.value: (None if r is None else str(r.quantize(Decimal("0.01")))) for v, r in ratios.items()
            },
            "feeds": feeds,
            "pairs": readings,
            "equity": {v.value: str(e.quantize(Decimal("0.01"))) for v, e in self._equity.items()},
            "unrealized_pnl": str(
                sum((Decimal(u) for r in readings for u in r["upnl"].values() if u is not None), Decimal(0))
            ),
        }

    def _accounts(self) -> dict[Venue, Decimal | None]:
        ratios: dict[Venue, Decimal | None] = {}
        for venue in self.venues:
            try:
                report: AccountReport = self.desk.ask_venue(venue, FetchAccount())
            except Exception as exc:  # noqa: BLE001 - a venue that cannot be read is itself the alert
                self._episode(
                    ("unreachable", venue),
                    True,
                    EventLevel.WARNING,
                    "venue_unreachable",
                    f"{venue}: account not readable: {exc}",
                )
                continue
            self._episode(("unreachable", venue), False, EventLevel.WARNING, "venue_unreachable", "")
            acc = report.account
            ratio = collateral_ratio(acc.equity, acc.maintenance_requirement)
            ratios[venue] = ratio
            self._equity[venue] = acc.equity
            low = ratio is not None and ratio < self.trading.min_collateral_ratio
            self._episode(
                ("collateral", venue),
                low,
                EventLevel.CRITICAL,
                "collateral_low",
                f"{venue}: collateral ratio {ratio:.2f} is below {self.trading.min_collateral_ratio} "
                f"(equity {acc.equity:.2f}, maintenance margin {acc.maintenance_requirement:.2f})"
                if low
                else "",
                venue=venue,
                ratio=ratio,
            )
        return ratios

    def _feeds(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for venue in self.venues:
            try:
                state: FeedState = self.desk.ask_venue(venue, GetFeedState())
            except Exception as exc:  # noqa: BLE001
                out[venue.value] = {"error": str(exc)}
                continue
            stale = sorted(s for s, age in state.ages_s.items() if age is None or age > self.stale_after_s)
            out[venue.value] = {
                "connected": state.connected,
                "stale": stale,
                "connections": state.connections,
                "messages": state.messages,
                "ages_s": {s: None if a is None else round(a, 1) for s, a in state.ages_s.items()},
            }
            self._episode(
                ("feed", venue),
                bool(stale),
                EventLevel.WARNING,
                "feed_stale",
                f"{venue}: price feed stale for {', '.join(stale)}; using REST",
                venue=venue,
            )
        return out

    def _positions(self) -> dict[Venue, Positions | None]:
        out: dict[Venue, Positions | None] = {}
        self._last_positions = out
        for venue in self.venues:
            try:
                out[venue] = self.desk.ask_venue(venue, FetchPositions())
            except Exception as exc:  # noqa: BLE001
                log.warning("%s positions not readable: %s", venue, exc)
                out[venue] = None
        return out

    def _pair(
        self,
        pair: PairRecord,
        legs_orders: list[tuple[PositionRecord, list[OrderRecord]]],
        ratios: dict[Venue, Decimal | None],
        positions: dict[Venue, Positions | None],
        writes: list[Any],
    ) -> dict[str, Any]:
        legs = [leg for leg, _ in legs_orders]
        marks: dict[Side, Decimal | None] = {}
        upnl: dict[Side, Decimal | None] = {}
        distance: dict[str, Decimal | None] = {}
        for leg, orders in legs_orders:
            book = leg_book(leg.side, orders)
            mark: Decimal | None = None
            try:
                reply: QuoteReply = self.desk.ask_venue(leg.venue, GetQuote(leg.symbol))
                mark = reply.quote.mark
            except Exception as exc:  # noqa: BLE001
                log.warning("%s mark of %s not readable: %s", leg.venue, leg.symbol, exc)
            marks[leg.side] = mark
            value = None
            if mark is not None and book.entry_price is not None and book.held > 0:
                value = unrealized_pnl(leg.side, book.held, book.entry_price, mark)
            upnl[leg.side] = value
            venue_positions = positions.get(leg.venue)
            liq = None
            if venue_positions is not None:
                liq = next(
                    (
                        p.liquidation_price
                        for p in venue_positions.items
                        if p.symbol == leg.symbol and p.side is leg.side and p.liquidation_price
                    ),
                    None,
                )
            distance[leg.venue.value] = (
                None if liq is None or mark is None else liquidation_distance(leg.side, mark, liq)
            )
            writes.append(UpdatePosition(leg.id, LegFigures(mark_price=mark, unrealized_pnl=value)))
        long_leg = next(leg for leg in legs if leg.side is Side.LONG)
        short_leg = next(leg for leg in legs if leg.side is Side.SHORT)
        divergence = None
        if upnl.get(Side.LONG) is not None and upnl.get(Side.SHORT) is not None and pair.notional > 0:
            divergence = pnl_divergence(upnl[Side.LONG], upnl[Side.SHORT], pair.notional)  # type: ignore[arg-type]
        if pair.state is PairState.OPEN:
            high = divergence is not None and divergence > self.trading.max_pnl_divergence
            self._episode(
                ("divergence", pair.id),
                high,
                EventLevel.WARNING,
                "pnl_divergence",
                f"pair {pair.id}: PnL divergence {divergence:.4f} is above {self.trading.max_pnl_divergence} "
                f"(long {upnl[Side.LONG]:.2f}, short {upnl[Side.SHORT]:.2f})"
                if high
                else "",
                pair.id,
                divergence=divergence,
            )
        writes.append(
            RecordSnapshot(
                pair.id,
                marks.get(Side.LONG),
                marks.get(Side.SHORT),
                upnl.get(Side.LONG),
                upnl.get(Side.SHORT),
                ratios.get(long_leg.venue),
                ratios.get(short_leg.venue),
                divergence,
            )
        )
        return {
            "pair_id": pair.id,
            "state": pair.state.value,
            "upnl": {s.value: None if v is None else str(v) for s, v in upnl.items()},
            "divergence": None if divergence is None else str(divergence),
            "liquidation_distance": {k: None if v is None else str(v) for k, v in distance.items()},
        }

    # ---- limits -----------------------------------------------------------------------------------------

    def _watch_limits(self, now: datetime, ratios: dict[Venue, Decimal | None]) -> None:
        """Measure every limit, trip what is broken, and tell the closer what a trip closes."""
        book, config = self.limits, self.limits.config
        figures = ledger_figures(self.desk.repo, now)
        naked = {p.id: p.updated_at for p in self.desk.repo.list_pairs([PairState.NAKED])}
        equity = total_equity({v: self._equity.get(v) for v in ratios}, self.venues)  # all read this tick, or None
        high = None if equity is None else book.high_water(equity)
        weakest = weakest_venue(ratios)
        oldest = max((now - since for since in naked.values()), default=None)
        book.measured(
            {
                Limit.MAX_NOTIONAL: max(venue_exposure(figures.exposure, self.venues).values()),
                Limit.MAX_DAILY_COST: figures.daily_cost,
                Limit.MAX_DRAWDOWN: None if high is None or equity is None else high - equity,
                Limit.MIN_COLLATERAL_RATIO_CLOSE: None if weakest is None else weakest[1],
                Limit.MAX_NAKED_SECONDS: None if oldest is None else Decimal(int(oldest.total_seconds())),
                Limit.MAX_OPENS_PER_HOUR: Decimal(figures.opens_last_hour),
            }
        )
        # The closes a trip asks for go out before the trip is written: a write that fails (a writer restarting)
        # must not keep the kill switch from closing anything. The trip stays latched and is written next tick.
        cost = check_daily_cost(config, now, figures.daily_cost)
        if cost is not None:
            self._trip(cost)  # opening pauses; the pairs run their course
        drawdown = None if high is None or equity is None else check_drawdown(config, now, high, equity)
        kill = book.tripped(Limit.MAX_DRAWDOWN)
        still_open = tuple(sorted({leg.pair_id for leg in figures.exposure if leg.state is PairState.OPEN}))
        if drawdown is not None and kill is None:
            self._demand(drawdown, None)  # the kill switch: every live pair, now
        elif kill is not None and still_open:
            self._demand(kill, still_open)  # open after the trip: a restart, or a lost message
        if drawdown is not None:
            self._trip(drawdown)
        collateral = check_collateral(config, now, ratios)
        if collateral is not None and collateral.venue is not None:
            shed = pair_to_shed(collateral.venue, figures.exposure)
            if shed is not None:
                self._demand(collateral, (shed,))  # one pair a tick until the venue is above the bound
            self._trip(collateral)
        for trip in check_naked(config, now, naked):
            if trip.pair_id is not None and trip.pair_id not in self._forced:
                self._forced.add(trip.pair_id)
                self._demand(trip, (trip.pair_id,))
            self._trip(trip)
        self._forced &= set(naked)

    def _trip(self, trip: Trip) -> None:
        try:
            self.limits.trip(trip)
        except Exception as exc:  # noqa: BLE001 - latched and blocking already; the write is retried next tick
            log.warning("limit %s tripped but not kept yet: %r", trip.limit, exc)

    def _demand(self, trip: Trip, pair_ids: tuple[int, ...] | None) -> None:
        try:
            self.desk.directory.get("closer").tell(LimitBreached(trip, pair_ids))
        except pykka.ActorDeadError:
            log.warning("closer down: what limit %s closes is asked again on the next tick", trip.limit)

    # ---- reconciliation ---------------------------------------------------------------------------------

    def _expected(self) -> tuple[dict[Key, Decimal], set[Key], dict[Key, list[PairRecord]]]:
        """What the pairs hold per (venue, symbol); which of those are mid-trade; which pairs hold each."""
        expected: dict[Key, Decimal] = {}
        moving: set[Key] = set()
        holders: dict[Key, list[PairRecord]] = {}
        claimed = self.desk.claims.claimed()
        pairs = self.desk.repo.list_pairs(ACTIVE_STATES)
        books = self.desk.repo.legs_with_orders(p.id for p in pairs)
        for pair in pairs:
            for leg, orders in books.get(pair.id, []):
                key = (leg.venue, leg.symbol)
                book = leg_book(leg.side, orders)
                expected[key] = expected.get(key, Decimal(0)) + leg.side.sign * book.held
                in_motion = pair.state in (PairState.PLANNED, PairState.OPENING, PairState.ROLLING_BACK)
                if pair.id in claimed or in_motion or any(is_unresolved(o) for o in orders):
                    moving.add(key)
                if pair.state in (PairState.OPEN, PairState.CLOSING) and book.held > 0:
                    holders.setdefault(key, []).append(pair)
        return expected, moving, holders

    def _reconcile(
        self,
        positions: dict[Venue, Positions | None],
        before: Expected,
        after: Expected,
        threshold: int = MISMATCH_TICKS,
    ) -> list[str]:
        """Compare, per venue and symbol, what the pairs hold with what the venue holds; act on differences
        that persist `threshold` readings. Returns what was found.

        The venues are read between two readings of the database (`before`, `after`): a symbol that was
        mid-trade at either, or whose expectation changed in between, is not judged this time, since the
        venue may have been read on the other side of that trade."""
        expected, moving, holders = after
        moving = (
            moving
            | before[1]
            | {
                k
                for k in before[0].keys() | expected.keys()
                if before[0].get(k, Decimal(0)) != expected.get(k, Decimal(0))
            }
        )
        found: list[str] = []
        for venue, report in positions.items():
            if report is None:
                continue
            actual: dict[str, Decimal] = {}
            entry: dict[str, Decimal] = {}
            for p in report.items:
                actual[p.symbol] = actual.get(p.symbol, Decimal(0)) + p.side.sign * p.quantity
                entry[p.symbol] = p.entry_price
            flagged = {s for (v, s) in self._mismatch if v is venue}  # a flagged symbol is judged until it clears
            for symbol in {s for (v, s) in expected if v is venue} | set(actual) | flagged:
                key = (venue, symbol)
                want, have = expected.get(key, Decimal(0)), actual.get(symbol, Decimal(0))
                if want == have:
                    self._mismatch.pop(key, None)
                    self._episode(("mismatch", key), False, EventLevel.CRITICAL, "position_mismatch", "")
                    if f"position:{venue.value}:{symbol}" in self.gate.blocks:  # the coordinator writes the gate
                        self.desk.tell("coordinator", UnblockOpening(f"position:{venue.value}:{symbol}"))
                    continue
                if key in moving:
                    self._mismatch[key] = min(self._mismatch.get(key, 0), threshold - 1)  # needs a fresh reading
                    continue
                self._mismatch[key] = self._mismatch.get(key, 0) + 1
                if self._mismatch[key] >= threshold:
                    found.append(self._act(key, want, have, holders.get(key, []), entry.get(symbol)))
        return found

    def _act(self, key: Key, want: Decimal, have: Decimal, holders: list[PairRecord], entry: Decimal | None) -> str:
        """A difference that persisted: our leg shrank (pair NAKED), or the venue holds something unknown."""
        venue, symbol = key
        message = f"{venue} {symbol}: the venue holds {have}, the pairs hold {want}"
        self._episode(
            ("mismatch", key),
            True,
            EventLevel.CRITICAL,
            "position_mismatch",
            message,
            venue=venue,
            symbol=symbol,
            venue_quantity=have,
            expected=want,
        )
        if want != 0 and have * want >= 0 and abs(have) < abs(want):
            # Our leg shrank or vanished: liquidated, or closed outside the farmer.
            for pair in holders:
                self._turn_naked(pair, venue, have, want)
        elif self.policy is UnknownPositions.CLOSE:
            if key not in self._adopted:
                self._adopted.add(key)
                self._adopt(venue, symbol, have - want, entry)
        else:
            self.desk.tell(
                "coordinator",
                BlockOpening(
                    f"position:{venue.value}:{symbol}",
                    f"{message}: opening is blocked until it is resolved (reconcile.unknown_positions = alert)",
                ),
            )
        return message

    def _adopt(self, venue: Venue, symbol: str, signed: Decimal, entry_price: Decimal | None) -> None:
        """Take a position nobody accounts for into a NAKED pair of its own, which the closer flattens."""
        side = Side.LONG if signed > 0 else Side.SHORT
        quantity = abs(signed)
        first, second = self.venues
        other = second if venue is first else first
        name, other_symbol = symbol, symbol
        for m in self.trading.markets:
            if m.symbols.get(venue) == symbol:
                name, other_symbol = m.name, m.symbol(other)
        mine, theirs = LegPlan(venue, symbol, side), LegPlan(other, other_symbol, side.opposite)
        long_leg, short_leg = (mine, theirs) if side is Side.LONG else (theirs, mine)
        notional = quantity * (entry_price or Decimal(0))
        pair_id = self.desk.write(CreatePair(PairPlan(name, long_leg, short_leg, Decimal(1), notional, quantity, 0))).id
        assert pair_id is not None
        leg = next(x for x in self.desk.repo.positions_for_pair(pair_id) if x.venue is venue)
        LegTrader(self.desk).book_external(
            leg, OrderPurpose.OPEN, quantity, entry_price, "a position found on the venue that no pair accounted for"
        )
        self.desk.write(TransitionPair(pair_id, PairState.PLANNED, PairState.OPENING, "adopting an unknown position"))
        self.desk.write(
            TransitionPair(
                pair_id,
                PairState.OPENING,
                PairState.NAKED,
                f"unknown {side} {quantity} {symbol} on {venue} adopted: the closer flattens it "
                "(reconcile.unknown_positions = close)",
                level=EventLevel.CRITICAL,
            )
        )

    def _turn_naked(self, pair: PairRecord, venue: Venue, have: Decimal, want: Decimal) -> None:
        # A refusal means someone moved the pair first: whoever did owns it now.
        with contextlib.suppress(TransitionRefusedError):
            self.desk.write(
                TransitionPair(
                    pair.id,
                    pair.state,
                    PairState.NAKED,
                    f"a leg on {venue} shrank or vanished (venue {have}, expected {want}): liquidated or "
                    "closed outside the farmer",
                    level=EventLevel.CRITICAL,
                )
            )
