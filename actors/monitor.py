"""Monitor: every tick, marks, PnL per leg, collateral ratio per venue, divergence, feed freshness, and
whether the venues hold what the database says. Raises events when a condition starts and when it clears.

It changes no pair: what the venues hold differently (a leg gone, a position nobody accounts for) is reported
to the Closer (actors.position_watch), and what a tripped limit closes is demanded of it (actors.limit_watch).
"""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal
from typing import Any

from actors.base import DeathCallback, SupervisedActor
from actors.desk import Desk
from actors.episodes import Episodes
from actors.gate import TradingGate
from actors.limit_watch import LimitWatch
from actors.limitbook import LimitBook
from actors.messages import (
    AccountReport,
    FeedState,
    FetchAccount,
    FetchPositions,
    GetFeedState,
    GetQuote,
    GetStatus,
    Positions,
    QuoteReply,
    ReconcilePositions,
    ReconcileReport,
    RecordSnapshot,
    StatusReply,
    Tick,
    UpdatePosition,
    WriteBatch,
)
from actors.position_watch import PositionWatch, read_active
from core.clock import Clock
from core.domain import EventLevel, PairState, Side, Venue
from core.ledger import leg_book
from core.risk import collateral_ratio, liquidation_distance, pnl_divergence, unrealized_pnl
from storage.records import LegFigures, OrderRecord, PairRecord, PositionRecord

log = logging.getLogger(__name__)

WATCHED_STATES = (PairState.OPEN, PairState.CLOSING, PairState.NAKED)


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
        limits: LimitBook,
        gate: TradingGate | None = None,
    ) -> None:
        super().__init__(name, generation, clock, on_death)
        del gate  # still passed by the engine; opening is held back by telling the coordinator (BlockOpening)
        self.desk = desk
        self.trading = desk.settings.trading
        self.venues = self.trading.venues
        self.stale_after_s = float(desk.settings.monitor.feed_stale_after_s)
        self.episodes = Episodes(desk)
        self.positions = PositionWatch(desk, self.episodes)
        self.limits = LimitWatch(desk, limits)
        self._equity: dict[Venue, Decimal] = {}
        self._last_positions: dict[Venue, Positions | None] = {}
        self.summary: dict[str, Any] = {}
        self.ticks = 0

    def handle(self, message: Any) -> Any:
        """Dispatch one message."""
        match message:
            case Tick(now=now):
                self.check(now)
                return None
            case ReconcilePositions():
                before = self.positions.expected()
                positions = self._positions()
                found = self.positions.check(positions, before, self.positions.expected(), threshold=1)
                return ReconcileReport(all(p is not None for p in self._last_positions.values()), tuple(found))
            case GetStatus():
                return StatusReply(self.name, {"ticks": self.ticks, **self.summary})
        return super().handle(message)

    # ---- the tick ---------------------------------------------------------------------------------------

    def check(self, now: datetime) -> None:
        """One full reading."""
        self.ticks += 1
        ratios = self._accounts()
        feeds = self._feeds()
        before = self.positions.expected()
        positions = self._positions()
        active, books = read_active(self.desk)  # the reading after the venues', and the pairs' figures below
        after = self.positions.expected((active, books))
        pairs = [p for p in active if p.state in WATCHED_STATES]
        writes: list[Any] = []
        marks: dict[tuple[Venue, str], Decimal | None] = {}  # one reading of each symbol per tick, for every pair
        readings = [self._pair(p, books.get(p.id, []), ratios, positions, writes, marks) for p in pairs]
        if writes:  # marks and snapshots of the whole tick in one transaction, not three per pair
            self.desk.directory.get("writer").tell(WriteBatch(tuple(writes)))
        self.positions.check(positions, before, after)
        self.limits.watch(now, ratios, self._equity)
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
                self.episodes.update(
                    ("unreachable", venue),
                    True,
                    EventLevel.WARNING,
                    "venue_unreachable",
                    f"{venue}: account not readable: {exc}",
                )
                continue
            self.episodes.update(("unreachable", venue), False, EventLevel.WARNING, "venue_unreachable", "")
            acc = report.account
            ratio = collateral_ratio(acc.equity, acc.maintenance_requirement)
            ratios[venue] = ratio
            self._equity[venue] = acc.equity
            low = ratio is not None and ratio < self.trading.min_collateral_ratio
            self.episodes.update(
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
            self.episodes.update(
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

    def _mark(self, leg: PositionRecord) -> Decimal | None:
        """The leg's venue mark now (the feed's, or REST's when the feed is stale); None when unreadable."""
        try:
            reply: QuoteReply = self.desk.ask_venue(leg.venue, GetQuote(leg.symbol))
        except Exception as exc:  # noqa: BLE001
            log.warning("%s mark of %s not readable: %s", leg.venue, leg.symbol, exc)
            return None
        mark: Decimal | None = reply.quote.mark
        return mark

    def _pair(
        self,
        pair: PairRecord,
        legs_orders: list[tuple[PositionRecord, list[OrderRecord]]],
        ratios: dict[Venue, Decimal | None],
        positions: dict[Venue, Positions | None],
        writes: list[Any],
        tick_marks: dict[tuple[Venue, str], Decimal | None],
    ) -> dict[str, Any]:
        legs = [leg for leg, _ in legs_orders]
        marks: dict[Side, Decimal | None] = {}
        upnl: dict[Side, Decimal | None] = {}
        distance: dict[str, Decimal | None] = {}
        for leg, orders in legs_orders:
            book = leg_book(leg.side, orders)
            key = (leg.venue, leg.symbol)
            if key not in tick_marks:
                tick_marks[key] = self._mark(leg)
            mark = tick_marks[key]
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
        long_upnl, short_upnl = upnl.get(Side.LONG), upnl.get(Side.SHORT)
        if long_upnl is not None and short_upnl is not None and pair.notional > 0:
            divergence = pnl_divergence(long_upnl, short_upnl, pair.notional)
        if pair.state is PairState.OPEN:
            high = divergence is not None and divergence > self.trading.max_pnl_divergence
            self.episodes.update(
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
