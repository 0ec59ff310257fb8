"""Closer: closes expired pairs (both legs at once), retries a failed leg until flat, repairs naked pairs.

Besides the coordinator's opening, it is the one actor that moves pairs: a leg the Monitor saw vanish turns its
pair NAKED here, and a venue position nobody accounts for is adopted here (reconcile.unknown_positions). It
also settles what a crash or a failed open left mid-way (actors.recovery). Retries back off per pair; nothing
is ever sent while an earlier order's outcome is unknown.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from actors.adoption import Adopter
from actors.base import DeathCallback, SupervisedActor
from actors.desk import Desk
from actors.maker import MakerPhase, leg_rules, maker_side, mid_price
from actors.messages import (
    CloseAll,
    ClosePair,
    CloseResult,
    FetchFunding,
    FetchPositions,
    GetQuote,
    GetStatus,
    LegVanished,
    LimitBreached,
    OrderRejected,
    Positions,
    ReconcilePairs,
    StatusReply,
    Tick,
    TransitionPair,
    UnknownPosition,
    UpdatePosition,
)
from actors.recovery import UNSETTLED, Recovery
from actors.trader import LegTrader, Reply
from core import failpoints
from core.clock import Clock
from core.config import ExecutionStyle
from core.domain import EventLevel, OrderPurpose, PairState, Side, Venue
from core.ledger import PositionState, backoff_s, leg_book
from core.limits import Limit, Trip
from core.points import SideVolume, order_sides, points_by_side
from exchanges.errors import VenueError
from storage.errors import TransitionRefusedError
from storage.records import LegFigures, OrderRecord, PairRecord, PositionRecord

log = logging.getLogger(__name__)

CRITICAL_AFTER_FAILURES = 3
# A pair left mid-open by a crash is only touched once no live request of its opener can still land: after
# this long watched unclaimed and unchanged, on the monotonic clock (a wall step must not fake that age).
ORPHAN_AFTER_S = 120.0


@dataclass
class _Retry:
    failures: int = 0
    # On clock.monotonic(): a wall-clock step must neither make every retry due at once nor stall them.
    next_at: float | None = None


class Closer(SupervisedActor):
    """Moves pairs to CLOSED (or FAILED) and keeps at it until every leg is flat."""

    def __init__(self, name: str, generation: int, clock: Clock, on_death: DeathCallback | None, *, desk: Desk) -> None:
        super().__init__(name, generation, clock, on_death)
        self.desk = desk
        self.trader = LegTrader(desk)
        self.recovery = Recovery(name, clock, desk, self.trader, self._flatten)
        self.adopter = Adopter(desk)
        self.timings = desk.settings.timings
        # Points per USD per venue and liquidity side; a venue not named earns none.
        self.maker_points = desk.settings.points.maker_rates()
        self.taker_points = desk.settings.points.taker_rates()
        self._retries: dict[int, _Retry] = {}
        # Pair id -> (state and update seen, monotonic time first seen so) for pairs left mid-open.
        self._unsettled_since: dict[int, tuple[PairState, datetime, float]] = {}
        self.closed = 0

    def handle(self, message: Any) -> Any:
        """Dispatch one message."""
        match message:
            case Tick(now=now):
                self._on_tick(now)
                return None
            case ClosePair(pair_id=pair_id, reason=reason):
                return CloseResult({pair_id: self.close(self.desk.repo.get_pair(pair_id), reason)})
            case CloseAll(reason=reason):
                pairs = self.desk.repo.list_pairs([PairState.OPEN, PairState.CLOSING, PairState.NAKED])
                return CloseResult({p.id: self.close(p, reason, urgent=True) for p in pairs})
            case LimitBreached(trip=trip, pair_ids=pair_ids):
                return CloseResult(self._close_for_limit(trip, pair_ids))
            case LegVanished():
                return CloseResult(self._turn_naked(message))
            case UnknownPosition():
                return self.adopter.take(message)
            case ReconcilePairs():
                return self.recovery.reconcile()
            case GetStatus():
                retrying = {str(k): v.failures for k, v in self._retries.items() if v.failures}
                return StatusReply(self.name, {"closed": self.closed, "retrying": retrying})
        return super().handle(message)

    # ---- scheduling -------------------------------------------------------------------------------------

    def _on_tick(self, now: datetime) -> None:
        watched: set[int] = set()
        for pair in self.desk.repo.list_active_pairs():
            if pair.id in self.desk.claims.claimed():
                continue
            if pair.state in UNSETTLED:
                watched.add(pair.id)
            retry = self._retries.get(pair.id)
            if retry is not None and retry.next_at is not None and self.clock.monotonic() < retry.next_at:
                continue
            if pair.state is PairState.OPEN and pair.expires_at is not None and now >= pair.expires_at:
                self.close(pair, "duration expired")
            elif pair.state in (PairState.CLOSING, PairState.NAKED):
                self._work(pair)
            elif pair.state in UNSETTLED and self._orphaned(pair):
                self.recovery.recover(pair)
        for pair_id in self._unsettled_since.keys() - watched:
            del self._unsettled_since[pair_id]  # claimed again, moved on, or gone: watched afresh next time

    def _orphaned(self, pair: PairRecord) -> bool:
        """True once the pair has sat unclaimed in the same state, unchanged, for ORPHAN_AFTER_S (monotonic).
        After a restart that wait starts again; the start-up reconciliation has already settled what a crash left."""
        now = self.clock.monotonic()
        seen = (pair.state, pair.updated_at)
        state, updated_at, since = self._unsettled_since.get(pair.id, (*seen, now))
        if (state, updated_at) != seen:
            since = now
        self._unsettled_since[pair.id] = (*seen, since)
        return now - since >= ORPHAN_AFTER_S

    def close(self, pair: PairRecord, reason: str, *, urgent: bool = False) -> PairState:
        """Close a pair now (OPEN -> CLOSING, then both legs); returns where it stands. An urgent close (a
        close-all, a limit) is taker whatever `execution.close` says: nothing of it rests waiting for the market."""
        if not self.desk.claims.claim(pair.id, self.name):
            return pair.state
        try:
            if pair.state is PairState.OPEN:
                style = ExecutionStyle.TAKER if urgent else self.desk.settings.trading.execution.close
                data = {"mid": self._mids(pair), "execution": style.value}
                self.desk.write(
                    TransitionPair(
                        pair.id, PairState.OPEN, PairState.CLOSING, reason, changes={"close_reason": reason}, data=data
                    )
                )
                pair = self.desk.repo.get_pair(pair.id)
                if not urgent:
                    self._close_making(pair)
            if pair.state in (PairState.CLOSING, PairState.NAKED):
                return self._flatten(pair)
            return pair.state
        finally:
            self.desk.claims.release(pair.id)

    def _close_making(self, pair: PairRecord) -> None:
        """A maker style's close (actors/maker.py), once, at the close decision: both legs reduced with post-only
        orders, each fill hedged; whatever it leaves is flattened taker right after (and retried as ever)."""
        style = self.desk.settings.trading.execution.close
        if style is ExecutionStyle.TAKER:
            return
        legs = {leg.side: leg for leg in self.desk.repo.positions_for_pair(pair.id)}
        if not all(self.trader.resolve(leg) for leg in legs.values()):
            return  # an order's outcome is unknown: the taker path settles it first
        target = min(self.desk.repo.held(leg.id) for leg in legs.values())
        if target <= 0:
            return
        try:
            phase = MakerPhase(
                self.desk, self.trader, pair_id=pair.id, legs=legs, purpose=OrderPurpose.CLOSE, target=target,
                style=style, maker_side=maker_side(self.desk, style, legs), rules=leg_rules(self.desk, legs),
                price=mid_price(self.desk, legs[Side.LONG]),
            ).run()  # fmt: skip
        except VenueError as exc:  # fees, rules or quotes not read: the close goes taker
            log.warning("pair %s: maker close not run (%s); closing taker", pair.id, exc)
            return
        log.info("pair %s: maker close: %s (%s)", pair.id, phase.reason, phase.done)

    def _mids(self, pair: PairRecord) -> dict[str, Decimal]:
        """Each leg's venue mid now (the close's decision), for the report's spread; a venue not read is left out."""
        mids: dict[str, Decimal] = {}
        for leg in self.desk.repo.positions_for_pair(pair.id):
            try:
                quote = self.desk.ask_venue(leg.venue, GetQuote(leg.symbol)).quote
            except Exception as exc:  # noqa: BLE001 - a figure for the report, never a reason not to close
                log.warning("quote of %s on %s not read: %s", leg.symbol, leg.venue, exc)
                continue
            if quote.bid is not None and quote.ask is not None:
                mids[leg.venue.value] = (quote.bid + quote.ask) / 2
        return mids

    def _close_for_limit(self, trip: Trip, pair_ids: tuple[int, ...] | None) -> dict[int, PairState]:
        """Close what a tripped limit demands now, whatever the retry schedule says: the named pairs still OPEN
        (still NAKED for the naked-leg limit), or with None every live pair (the kill switch)."""
        wanted = {PairState.OPEN}
        if pair_ids is None:
            wanted = {PairState.OPEN, PairState.CLOSING, PairState.NAKED}
        elif trip.limit is Limit.MAX_NAKED_SECONDS:
            wanted = {PairState.NAKED}
        repo = self.desk.repo
        pairs = repo.list_pairs(wanted) if pair_ids is None else [repo.get_pair(i) for i in pair_ids]
        states: dict[int, PairState] = {}
        for pair in pairs:
            if pair.state not in wanted:
                continue  # already on its way: asked twice, or moved on
            reason = f"limit {trip.limit}: {trip.reason}"
            self.desk.event(EventLevel.CRITICAL, "limit_close", f"pair {pair.id}: closing now ({reason})", pair.id)
            states[pair.id] = self.close(pair, reason, urgent=True)
        return states

    def _work(self, pair: PairRecord) -> None:
        if self.desk.claims.claim(pair.id, self.name):
            try:
                self._flatten(pair)
            finally:
                self.desk.claims.release(pair.id)

    # ---- flattening -------------------------------------------------------------------------------------

    def _flatten(self, pair: PairRecord) -> PairState:
        """Resolve unknown orders, send reduce-only orders for what each leg holds (both at once), finish."""
        purpose = OrderPurpose.CLOSE if pair.state is PairState.CLOSING else OrderPurpose.REPAIR
        legs = self.desk.repo.positions_for_pair(pair.id)
        resolved = {leg.id: self.trader.resolve(leg) for leg in legs}
        if pair.state is PairState.NAKED:
            self._write_off_vanished(pair, legs, resolved)
        sends = []
        for leg in legs:
            held = self.desk.repo.held(leg.id)
            if resolved[leg.id] and held > 0:
                order = self.trader.prepare(leg, purpose, held)
                sends.append((leg, order, self.desk.ask_venue_async(leg.venue, order)))
                if failpoints.armed("close.between_legs"):  # the first leg closed, the second never sent
                    self.trader.finish(*sends[0])
                    failpoints.hit("close.between_legs")
        replies: list[Reply] = [self.trader.finish(leg, order, f) for leg, order, f in sends]
        remaining = {leg.side: self.desk.repo.held(leg.id) for leg in legs}
        if all(resolved.values()) and not any(remaining.values()):
            return self._finish(pair, legs)
        self._failed_attempt(pair, remaining, replies)
        return pair.state

    def _write_off_vanished(self, pair: PairRecord, legs: list[PositionRecord], resolved: dict[int, bool]) -> None:
        """A leg the venue no longer holds at all (liquidated, closed by hand) is booked as closed at the mark,
        so the repair does not chase a position that is gone. Only when no other live pair uses that market."""
        others = [p for p in self.desk.repo.list_active_pairs() if p.id != pair.id and p.market == pair.market]
        if others:
            return
        for leg in legs:
            held = self.desk.repo.held(leg.id)
            if not resolved[leg.id] or held == 0:
                continue
            try:
                report: Positions = self.desk.ask_venue(leg.venue, FetchPositions())
            except VenueError as exc:
                log.warning("positions of %s not read: %s", leg.venue, exc)
                continue
            on_venue = sum(
                (p.quantity for p in report.items if p.symbol == leg.symbol and p.side is leg.side), Decimal(0)
            )
            if on_venue > 0:
                continue
            self.trader.book_external(
                leg, OrderPurpose.REPAIR, held, leg.mark_price, "the venue holds nothing: closed outside the farmer"
            )
            self.desk.event(
                EventLevel.CRITICAL,
                "leg_vanished",
                f"pair {pair.id}: the {leg.side} leg on {leg.venue} ({held}) is gone from the venue "
                "(liquidated or closed by hand); booked as closed at the last mark",
                pair.id,
            )

    def _failed_attempt(self, pair: PairRecord, remaining: dict[Side, Decimal], replies: list[Reply]) -> None:
        retry = self._retries.setdefault(pair.id, _Retry())
        delay = backoff_s(retry.failures, self.timings.leg_retry_min_s, self.timings.leg_retry_max_s)
        retry.failures += 1
        retry.next_at = self.clock.monotonic() + float(delay)
        errors = "; ".join(f"{r.venue}: {r.message}" for r in replies if isinstance(r, OrderRejected)) or "pending"
        level = EventLevel.CRITICAL if retry.failures >= CRITICAL_AFTER_FAILURES else EventLevel.WARNING
        held = {side.value: qty for side, qty in remaining.items() if qty}
        self.desk.event(
            level,
            "close_retry",
            f"pair {pair.id}: legs still open {held} ({errors}); retry {retry.failures} in {delay}s",
            pair.id,
            failures=retry.failures,
        )

    def _funding(self, pair: PairRecord, leg: PositionRecord, until: datetime) -> Decimal | None:
        """Funding the leg's market settled while the pair was open (None if it cannot be attributed).

        Venues report funding per market, not per order: with another pair of ours in the same market at the
        same time the split would be a guess, so then nothing is attributed."""
        if pair.opened_at is None:
            return Decimal(0)
        opened = pair.opened_at
        if any(p.id != pair.id for p in self.desk.repo.pairs_open_in_market(pair.market, opened, until)):
            return None
        try:
            payments = self.desk.ask_venue(leg.venue, FetchFunding(leg.symbol))
        except Exception as exc:  # noqa: BLE001 - funding is a figure, never a reason not to close
            log.warning("funding of %s on %s not read: %s", leg.symbol, leg.venue, exc)
            return None
        return sum((p.amount for p in payments if opened <= p.ts <= until), Decimal(0))

    def _sides(self, orders: list[OrderRecord]) -> SideVolume:
        """A leg's volume (as leg_book counts it) split by its fills' maker flags."""
        total = SideVolume()
        for o in orders:
            if o.filled_quantity > 0:
                volume = o.filled_quantity * (o.avg_price or Decimal(0))
                total += order_sides(o.filled_quantity, volume, self.desk.repo.fills_for_order(o.id))
        return total

    def _finish(self, pair: PairRecord, legs: list[PositionRecord]) -> PairState:
        now = self.clock.now()
        realized = fees = volume = funding = Decimal(0)
        funding_known = True
        volume_by_venue: dict[Venue, SideVolume] = {}
        for leg in legs:
            orders = self.desk.repo.orders_for_position(leg.id)
            book = leg_book(leg.side, orders)
            leg_funding = self._funding(pair, leg, now)
            realized += book.realized_pnl
            fees += book.fees
            volume += book.volume
            volume_by_venue[leg.venue] = volume_by_venue.get(leg.venue, SideVolume()) + self._sides(orders)
            if leg_funding is None:
                funding_known = False
            else:
                funding += leg_funding
            self.desk.write(
                UpdatePosition(
                    leg.id,
                    LegFigures(
                        exit_price=book.exit_price,
                        realized_pnl=book.realized_pnl,
                        fees=book.fees,
                        funding=leg_funding,
                        state=PositionState.CLOSED,
                    ),
                )
            )
        venue_points = points_by_side(volume_by_venue, self.maker_points, self.taker_points)
        points = sum(venue_points.values(), Decimal(0))
        # Realized PnL of the pair: both legs' price PnL, less fees, plus funding received (minus paid).
        changes = {
            "closed_at": now,
            "close_reason": pair.close_reason or "closed",
            "realized_pnl": realized - fees + funding,
            "fees": fees,
            "funding": funding if funding_known else None,
            "volume": volume,
            "points": points,
        }
        was = pair.state
        self.desk.write(
            TransitionPair(
                pair.id,
                was,
                PairState.CLOSED,
                "both legs flat" if was is PairState.CLOSING else "repaired: both legs flat",
                changes=changes,
                data={
                    "pnl_before_fees": realized,
                    "fees": fees,
                    "funding": funding,
                    "volume": volume,
                    "points": points,
                    # The report's per-venue points, at the rates in force when the pair closed.
                    "points_by_venue": {str(v): p for v, p in venue_points.items()},
                },
            )
        )
        self._retries.pop(pair.id, None)
        self.closed += 1
        return PairState.CLOSED

    # ---- a leg the Monitor saw vanish -----------------------------------------------------------------------------

    def _turn_naked(self, seen: LegVanished) -> dict[int, PairState]:
        """Pairs whose leg the venue no longer holds in full go NAKED (the repair follows on the next tick)."""
        reason = (
            f"a leg on {seen.venue} shrank or vanished (venue {seen.venue_quantity}, expected {seen.expected}): "
            "liquidated or closed outside the farmer"
        )
        states: dict[int, PairState] = {}
        for pair_id in seen.pair_ids:
            pair = self.desk.repo.get_pair(pair_id)
            states[pair_id] = pair.state
            if pair.state not in (PairState.OPEN, PairState.CLOSING) or not self.desk.claims.claim(pair_id, self.name):
                continue  # moved on since that reading, or someone is trading it: the next reading tells again
            try:
                # A refusal means the pair moved between the read and the write: whoever moved it owns it now.
                with contextlib.suppress(TransitionRefusedError):
                    self.desk.write(
                        TransitionPair(pair_id, pair.state, PairState.NAKED, reason, level=EventLevel.CRITICAL)
                    )
                    states[pair_id] = PairState.NAKED
            finally:
                self.desk.claims.release(pair_id)
        return states
