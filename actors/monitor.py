"""Monitor: every tick, marks, PnL per leg, collateral ratio per venue, divergence, feed freshness, and
whether the venues hold what the database says. Raises events when a condition starts and when it clears.

The pairs come from the book kept in memory (actors/livebook.py), which re-reads only what the writer changed
since the last reading; the database is read whole only when the Monitor starts or reconciles. Each tick writes
the marks and a snapshot of at most `monitor.snapshot_pairs_per_tick` pairs (those written longest ago): with
more pairs than that, each pair's figures are recorded every few ticks, and every pair's latest reading is in `status`.

It changes no pair: what the venues hold differently (a leg gone, a position nobody accounts for) is reported
to the Closer (actors.position_watch), and what a tripped limit closes is demanded of it (actors.limit_watch).
"""

from __future__ import annotations

import heapq
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
from actors.livebook import LivePair, book_of
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
from actors.position_watch import ActiveReading, PositionWatch
from core.clock import Clock
from core.domain import EventLevel, PairState, Side, Venue
from core.position_check import Expected
from core.risk import collateral_ratio, liquidation_distance, pnl_divergence, unrealized_pnl
from storage.records import LegFigures, PositionRecord

log = logging.getLogger(__name__)

WATCHED_STATES = (PairState.OPEN, PairState.CLOSING, PairState.NAKED)
# Pairs whose marks and snapshot one tick writes, at most: a tick of 1,000 pairs wrote 3,000 rows, and the writer
# busy with them held up the next tick and every trade's writes. Monitoring history, thinned; not a config value
# (core/config.py is not this module's to change).


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
        self.snapshot_pairs = desk.settings.monitor.snapshot_pairs_per_tick
        self.episodes = Episodes(desk)
        self.positions = PositionWatch(desk, self.episodes)
        self.limits = LimitWatch(desk, limits)
        self._equity: dict[Venue, Decimal] = {}
        self._last_positions: dict[Venue, Positions | None] = {}
        self.summary: dict[str, Any] = {}
        self.ticks = 0
        self.book = book_of(desk.repo.engine)
        self._written: dict[int, int] = {}  # the tick that last wrote each pair's figures
        self._live: ActiveReading = []
        self._expectation: tuple[tuple[int, Any], Expected] | None = None

    def on_start(self) -> None:
        """A new Monitor reads the whole book again: it trusts nothing an earlier one kept."""
        self.book.invalidate()

    def handle(self, message: Any) -> Any:
        """Dispatch one message."""
        match message:
            case Tick(now=now):
                self.check(now)
                return None
            case ReconcilePositions():
                self.book.invalidate()  # read again whole at the next tick
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
        before = self._expected(now)
        positions = self._positions()
        after = self._expected(now)  # the reading after the venues'; its pairs' figures below
        live = self._live
        pairs = [p for p in live if p.pair.state in WATCHED_STATES]
        due = self._due(pairs)
        liquidation: dict[tuple[Venue, str, Side], Decimal] = {}
        for venue, report in positions.items():
            for item in report.items if report is not None else ():
                if item.liquidation_price:
                    liquidation.setdefault((venue, item.symbol, item.side), item.liquidation_price)
        writes: list[Any] = []
        marks: dict[tuple[Venue, str], Decimal | None] = {}  # one reading of each symbol per tick, for every pair
        readings = [self._pair(p, ratios, liquidation, writes if p.pair.id in due else None, marks) for p in pairs]
        if writes:  # marks and snapshots of the whole tick in one transaction, not three per pair
            self.desk.directory.get("writer").tell(WriteBatch(tuple(writes)))
        self.positions.check(positions, before, after)
        self.limits.watch(now, ratios, self._equity, self.book.kept())
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
        self.book.board.publish(self.name, {"ticks": self.ticks, **self.summary})  # `status` reads it there

    def _expected(self, now: datetime) -> Expected:
        """What the live pairs hold, with every change committed before this call (worked out again only when
        the book's pairs or the claims changed since the last time)."""
        self.book.sync(self.desk.repo, now)
        version, self._live = self.book.versioned()
        key = (version, self.desk.claims.claimed())
        if self._expectation is None or self._expectation[0] != key:
            self._expectation = (key, self.positions.expected(self._live))
        return self._expectation[1]

    def _due(self, pairs: list[LivePair]) -> set[int]:
        """The pairs whose figures this tick writes: every one, or those written longest ago."""
        ids = [p.pair.id for p in pairs]
        if len(ids) > self.snapshot_pairs:
            ids = heapq.nsmallest(self.snapshot_pairs, ids, key=lambda i: self._written.get(i, -1))
        if len(self._written) > 2 * len(pairs):  # forget the pairs no longer watched
            watched = {p.pair.id for p in pairs}
            self._written = {i: t for i, t in self._written.items() if i in watched}
        self._written.update(dict.fromkeys(ids, self.ticks))
        return set(ids)

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
        held: LivePair,
        ratios: dict[Venue, Decimal | None],
        liquidation: dict[tuple[Venue, str, Side], Decimal],
        writes: list[Any] | None,
        tick_marks: dict[tuple[Venue, str], Decimal | None],
    ) -> dict[str, Any]:
        pair = held.pair
        legs = [x.leg for x in held.legs]
        marks: dict[Side, Decimal | None] = {}
        upnl: dict[Side, Decimal | None] = {}
        distance: dict[str, Decimal | None] = {}
        for x in held.legs:
            leg, book = x.leg, x.book
            key = (leg.venue, leg.symbol)
            if key not in tick_marks:
                tick_marks[key] = self._mark(leg)
            mark = tick_marks[key]
            marks[leg.side] = mark
            value = None
            if mark is not None and book.entry_price is not None and x.held > 0:
                value = unrealized_pnl(leg.side, x.held, book.entry_price, mark)
            upnl[leg.side] = value
            liq = liquidation.get((leg.venue, leg.symbol, leg.side))
            distance[leg.venue.value] = (
                None if liq is None or mark is None else liquidation_distance(leg.side, mark, liq)
            )
            if writes is not None:
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
        if writes is not None:
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
