"""The Monitor's limit watching: measure every risk limit each tick, trip what is broken, and tell the Closer
what a trip closes."""

from __future__ import annotations

import logging
from datetime import datetime
from decimal import Decimal

import pykka

from actors.desk import Desk
from actors.limitbook import LimitBook, ledger_figures, ledger_figures_of
from actors.livebook import LivePair
from actors.messages import LimitBreached
from core.domain import PairState, Venue
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

log = logging.getLogger(__name__)


class LimitWatch:
    """Measures the limits of `book` against the database and one tick's account readings."""

    def __init__(self, desk: Desk, book: LimitBook) -> None:
        self.desk = desk
        self.book = book
        self.venues = desk.settings.trading.venues
        self._forced: set[int] = set()  # NAKED pairs already sent to the closer for the naked-leg limit

    def watch(
        self,
        now: datetime,
        ratios: dict[Venue, Decimal | None],
        equity: dict[Venue, Decimal],
        held: list[LivePair] | None = None,
    ) -> None:
        """Measure every limit, trip what is broken, and tell the closer what a trip closes; the pairs are those
        `held` (the Monitor's book: the live ones and those finished lately), or read now."""
        book, config = self.book, self.book.config
        if held is None:
            figures = ledger_figures(self.desk.repo, now)
            naked = {p.id: p.updated_at for p in self.desk.repo.list_pairs([PairState.NAKED])}
        else:
            figures = ledger_figures_of(((p.pair, ((x.leg, x.book) for x in p.legs)) for p in held), now)
            naked = {p.pair.id: p.pair.updated_at for p in held if p.pair.state is PairState.NAKED}
        total = total_equity({v: equity.get(v) for v in ratios}, self.venues)  # all read this tick, or None
        high = None if total is None else book.high_water(total)
        weakest = weakest_venue(ratios)
        oldest = max((now - since for since in naked.values()), default=None)
        book.measured(
            {
                Limit.MAX_NOTIONAL: max(venue_exposure(figures.exposure, self.venues).values()),
                Limit.MAX_DAILY_COST: figures.daily_cost,
                Limit.MAX_DRAWDOWN: None if high is None or total is None else high - total,
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
        drawdown = None if high is None or total is None else check_drawdown(config, now, high, total)
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
            self.book.trip(trip)
        except Exception as exc:  # noqa: BLE001 - latched and blocking already; the write is retried next tick
            log.warning("limit %s tripped but not kept yet: %r", trip.limit, exc)

    def _demand(self, trip: Trip, pair_ids: tuple[int, ...] | None) -> None:
        self.desk.activity.alarm(f"limit {trip.limit} tripped")  # the closer must be free to close what it names
        try:
            self.desk.directory.get("closer").tell(LimitBreached(trip, pair_ids))
        except pykka.ActorDeadError:
            log.warning("closer down: what limit %s closes is asked again on the next tick", trip.limit)
