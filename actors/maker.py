"""MakerPhase: one open or close of a pair traded with post-only orders, each maker fill hedged at once.

maker_taker rests one leg at the touch and hedges each of its fills with a taker order on the other venue;
maker_maker rests both legs and hedges the leading one's excess taker once it passes `imbalance_usd` or
`imbalance_age_s`. Fills are heard on the venue's private stream (a listener wakes this thread at once), or by
polling when the stream is not trusted. Every order is recorded before it is sent (LegTrader) and its outcome
committed when it ends; a resting order is cancelled before the phase ends, so the phase leaves every order
final and the legs level but for a carry below one step. What is left of the target then goes taker on the
caller's usual path (the coordinator's concurrent legs, the closer's flatten), which also trims a carry.
The arithmetic is core/making.py.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from actors.desk import Desk
from actors.messages import (
    FetchFeeRates,
    FetchMarket,
    GetOrderWatch,
    GetQuote,
    LookupOrder,
    OrderAccepted,
    OrderInFlight,
    OrderRejected,
    OrderUnknown,
    PlaceOrder,
    UpdateOrder,
)
from actors.trader import LegTrader, Outcome, Reply, is_final, outcome_of
from core import failpoints, making
from core.config import ExecutionConfig, ExecutionStyle
from core.domain import EventLevel, OrderPurpose, Side, Venue
from core.ledger import OrderState
from exchanges.account_book import OrderView
from exchanges.base import FeeRates
from exchanges.errors import VenueError
from storage.records import OrderRecord, PositionRecord

log = logging.getLogger(__name__)

# Longest one wait for a fill lasts in real time before the clock's deadlines (repricing, timeouts) are looked
# at again: a fill wakes the wait at once, so this only bounds how late a reprice can be.
WAKE_S = 0.05
HEDGE_ATTEMPTS = 3
# Orders are sized for max_unhedged_usd at this much above the touch: what they hold unhedged stays within the
# bound in USD too while the price moves up to 1% during their life.
SIZE_MARGIN = Decimal("1.01")
# A resting order is read over REST this often (s) even while its venue's stream is trusted.
TRUSTED_POLL_S = 5.0
NOT_SENT = "recorded ahead for a hedge that was not needed; never sent"
MICRO = 1000


@dataclass(frozen=True, slots=True)
class LegRules:
    """What the phase needs of one leg's market: steps and minimum, and its tick."""

    step: Decimal
    minimum: Decimal
    tick: Decimal
    min_notional: Decimal = Decimal(0)

    def floor(self, price: Decimal, step: Decimal) -> Decimal:
        """The least quantity an order here may have at `price`, in whole `step`s: minimum size and notional."""
        by_notional = making.round_down(self.min_notional / price, step)
        if by_notional * price < self.min_notional:
            by_notional += step
        return max(self.minimum, by_notional)


@dataclass
class _Resting:
    side: Side
    row: OrderRecord
    price: Decimal
    venue_order_id: str | None
    polled_at: float  # when it was last read over REST (or placed), on the phase's clock
    seen: Decimal = Decimal(0)  # filled quantity already counted in `done`
    heard_ns: int | None = None  # when its earliest fill not yet hedged was heard


@dataclass
class PhaseResult:
    """How a phase ended: each leg's quantity traded in it, and why it stopped."""

    done: dict[Side, Decimal]
    reason: str
    unresolved: bool = False  # an order's outcome could not be settled: the caller must not guess
    hedges: list[dict[str, Any]] = field(default_factory=list)


class _Wake:
    """Fill events of our resting orders, handed from the stream threads to the phase's thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._ids: set[str] = set()
        self._count = 0
        self.heard: dict[str, int] = {}  # venue order id -> arrival of its first fill not yet counted
        self._filled: dict[str, Decimal] = {}  # venue order id -> the most it was heard filled

    def watch(self, venue_order_id: str) -> None:
        with self._cond:
            self._ids.add(venue_order_id)

    def forget(self, venue_order_id: str) -> None:
        with self._cond:
            self._ids.discard(venue_order_id)
            self.heard.pop(venue_order_id, None)
            self._filled.pop(venue_order_id, None)

    def listener(self, view: OrderView, arrived_ns: int) -> None:
        with self._cond:
            if view.venue_order_id not in self._ids:
                return
            # Stamped only when it brings a fill: `heard` then always means a fill not counted yet.
            if view.filled_quantity > self._filled.get(view.venue_order_id, Decimal(0)):
                self._filled[view.venue_order_id] = view.filled_quantity
                self.heard.setdefault(view.venue_order_id, arrived_ns)
            self._count += 1
            self._cond.notify_all()

    def take(self, venue_order_id: str) -> int | None:
        with self._cond:
            return self.heard.pop(venue_order_id, None)

    def poke(self) -> None:
        """Wake every waiter (the phase is ending)."""
        with self._cond:
            self._count += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout_s: float) -> int:
        with self._cond:
            if self._count == seen:
                self._cond.wait(timeout_s)
            return self._count


class MakerPhase:
    """Trades `target` on both legs of one pair with post-only orders (see the module docstring)."""

    def __init__(
        self,
        desk: Desk,
        trader: LegTrader,
        *,
        pair_id: int,
        legs: dict[Side, PositionRecord],
        purpose: OrderPurpose,
        target: Decimal,
        style: ExecutionStyle,
        maker_side: Side | None,
        rules: dict[Side, LegRules],
        price: Decimal,
    ) -> None:
        self.desk = desk
        self.trader = trader
        self.clock = desk.clock
        self.config: ExecutionConfig = desk.settings.trading.execution
        self.pair_id = pair_id
        self.legs = legs
        self.purpose = purpose
        self.target = target
        self.style = style
        self.rules = rules
        self.price = price
        self.step = max(r.step for r in rules.values())  # both legs trade whole steps of the coarser one
        self.size = making.chunk(self.config.max_unhedged_usd, price * SIZE_MARGIN, self.step)
        # No order smaller than either venue takes: a maker fill must be hedgeable in full on the other one.
        self.floor = max(r.floor(price, self.step) for r in rules.values())
        # One floor of the target is left to the taker finish: partial fills in a finer venue's step leave the legs
        # a hair apart, and a hair alone is below what a venue takes (a trim or close of it would be refused,
        # leaving a leg open for good); with a floor more, each leg's finishing order is one a venue accepts.
        self.target = making.round_down(target - self.floor, self.step)
        self.makers = (Side.LONG, Side.SHORT) if style is ExecutionStyle.MAKER_MAKER else (maker_side or Side.LONG,)
        self.done = {Side.LONG: Decimal(0), Side.SHORT: Decimal(0)}
        self.resting: dict[Side, _Resting | None] = dict.fromkeys(self.makers)
        self.rejects = 0
        self.wake = _Wake()
        self.watches: dict[Side, Any] = {}
        self.lead_since: float | None = None
        self.quotes_at: float | None = None
        self.touch: dict[Side, tuple[Decimal | None, Decimal | None]] = {}
        self.unresolved = False
        self.hedge_failed = False
        self.hedges: list[dict[str, Any]] = []
        # maker_taker: the next hedge's order, recorded while the maker order rests, so that a fill sends it at
        # once (its row's write is off the fill -> hedge path). Sent with the fill's quantity, which its outcome
        # records; one never needed is marked as never sent when the phase ends.
        self.reserved: dict[Side, tuple[OrderRecord, PlaceOrder]] = {}
        self.activity = desk.activity
        # maker_taker hears fills and hedges them on a thread of its own, always waiting for a fill: the phase's
        # own thread spends round trips on quotes, cancels and re-posts, and a fill must not wait for those.
        # `_lock` guards the counts (done, seen, reserved); `_hedging` lets one hedge out at a time.
        self._lock = threading.RLock()
        self._hedging = threading.Lock()
        self._stop_hedger = threading.Event()
        self._hedger: threading.Thread | None = None
        self._alarms_seen = 0

    # ---- the loop -----------------------------------------------------------------------------------------

    def run(self) -> PhaseResult:
        """Rest, hear fills, hedge, reprice, until the target is traded, the timeout, or too many refusals."""
        if self.size <= 0:
            return PhaseResult(dict(self.done), "max_unhedged_usd is below one step: nothing rests")
        if self.target < self.floor:
            return PhaseResult(dict(self.done), "too small to rest: all of it goes taker")
        started = self.clock.monotonic()
        self._alarms_seen = self.activity.alarms()  # only a later alarm ends this phase
        self.activity.phase(1)
        try:
            return self._run(started)
        finally:
            self.activity.phase(-1)

    def _run(self, started: float) -> PhaseResult:
        self._listen()
        hedger = None
        if self.style is ExecutionStyle.MAKER_TAKER:
            hedger = threading.Thread(target=self._hedge_fills, name=f"hedger-{self.pair_id}", daemon=True)
            self._hedger = hedger
            hedger.start()
        try:
            reason = self._loop(started)
        finally:
            self._stop_hedger.set()
            self.wake.poke()
            if hedger is not None:
                hedger.join()
        try:
            self._stop_resting()
            self._hedge_all()
        finally:
            self._unlisten()
            self.activity.unhedged(self.pair_id, Decimal(0))
            self._release_reserved()
        return PhaseResult(dict(self.done), reason, self.unresolved, self.hedges)

    def _loop(self, started: float) -> str:
        seen = 0
        timeout = float(self.config.maker_timeout_s)
        while True:
            if self._hedging.locked():  # a hedge on its way goes first: nothing of ours competes with it
                seen = self._wait(seen)
                continue
            self._absorb_all()
            if self.unresolved:
                return "an order's outcome is unknown"
            self._hedge_due()
            now = self.clock.monotonic()
            if now - started >= timeout:
                return f"maker timeout ({timeout:g} s)"
            if self.rejects >= self.config.max_post_only_rejects:
                return f"{self.rejects} post-only refusals in a row"
            if self.hedge_failed:
                return "a hedge did not fill after retries"
            if self.activity.stopping.is_set():
                return "the engine is stopping"
            urgent = self.activity.alarm_since(self._alarms_seen)
            if urgent is not None:
                return f"urgent work waits: {urgent}"
            self._refresh_quotes(now)
            for side in self.makers:
                self._tend(side)
            if self.unresolved:
                return "an order's outcome is unknown"
            self._keep_reserved()
            if self._complete():
                return "target traded"
            seen = self._wait(seen)

    def _wait(self, seen: int) -> int:
        """Wait for a fill (or WAKE_S real), told to Activity: a driver of fake time may move it on meanwhile."""
        self.activity.phase(1, waiting=True)
        try:
            return self.wake.wait(seen, WAKE_S)
        finally:
            self.activity.phase(-1, waiting=True)

    def _complete(self) -> bool:
        idle = all(r is None for r in self.resting.values())
        wanted = any(self._want(side) > 0 for side in self.makers)
        lagging = any(self._hedgeable(side) > 0 for side in (Side.LONG, Side.SHORT))
        return idle and not wanted and not lagging

    def _want(self, side: Side) -> Decimal:
        """What may rest on `side` now; 0 below the venue's minimum (what is left then goes taker after)."""
        quantity = making.maker_size(self.done, side, self.target, self.size, self.step)
        return quantity if quantity >= self.floor else Decimal(0)

    def _hedgeable(self, lagging: Side) -> Decimal:
        return making.hedge_size(self.done, lagging, self.step, self.rules[lagging].floor(self.price, self.step))

    # ---- resting orders ---------------------------------------------------------------------------------------

    def _buy(self, side: Side) -> bool:
        order_side = side if self.purpose is OrderPurpose.OPEN else side.opposite
        return order_side is Side.LONG

    def _refresh_quotes(self, now: float) -> None:
        if self.quotes_at is not None and now - self.quotes_at < float(self.config.poll_s):
            return
        self.quotes_at = now
        for side in self.makers:
            leg = self.legs[side]
            try:
                quote = self.desk.ask_venue(leg.venue, GetQuote(leg.symbol)).quote
            except Exception as exc:  # noqa: BLE001 - no touch now: the order keeps resting where it is
                log.warning("quote of %s on %s not read: %s", leg.symbol, leg.venue, exc)
                continue
            self.touch[side] = (quote.bid, quote.ask)

    def _tend(self, side: Side) -> None:
        """Keep one order resting at the touch for what this leg may still take."""
        bid, ask = self.touch.get(side, (None, None))
        buy = self._buy(side)
        resting = self.resting[side]
        if resting is not None:
            # The lagging leg of maker_maker follows the touch exactly; otherwise it may trail reprice_ticks.
            ticks = 0 if making.lead(self.done, side.opposite) > 0 else self.config.reprice_ticks
            tick = self.rules[side].tick
            if making.should_reprice(buy, resting.price, bid, ask, tick, ticks) or self._oversized(resting):
                self._cancel(resting)
            return
        price = making.rest_price(buy, bid, ask)
        if price is not None:  # sized at the touch now, with room for the move while it rests
            self.size = making.chunk(self.config.max_unhedged_usd, price * SIZE_MARGIN, self.step)
        quantity = self._want(side)
        if quantity <= 0 or price is None:
            return
        self._place(side, quantity, price)

    def _oversized(self, resting: _Resting) -> bool:
        """A resting order whose full fill would now take the leg past the bound (the other leg fell behind)."""
        left = resting.row.quantity - resting.seen
        return left > making.maker_size(self.done, resting.side, self.target, self.size, self.step)

    def _place(self, side: Side, quantity: Decimal, price: Decimal) -> None:
        leg = self.legs[side]
        if self.style is ExecutionStyle.MAKER_TAKER:  # before it rests: its first fill may come at once
            self._reserve(side.opposite, quantity)
        row, message = self.trader.prepare_maker(leg, self.purpose, quantity, price)
        failpoints.hit("maker.recorded")
        self.activity.sending(1)
        try:
            reply: Reply = self.desk.ask_venue(leg.venue, message)
        except Exception as exc:  # noqa: BLE001 - no reply from the actor: the order may rest; look it up
            reply = OrderInFlight(leg.venue, row.client_id, f"no reply from the venue actor: {exc!r}")
        finally:
            self.activity.sending(-1)
        if isinstance(reply, OrderInFlight):  # unknown, not merely resting: looked up until known
            reply = self.trader.settle(leg, row.client_id, reply, row.created_at)
        if isinstance(reply, OrderInFlight):
            self.trader.commit(outcome_of(row, reply))
            self.unresolved = True
            return
        self.quotes_at = None  # the touch is read afresh before the next order
        if isinstance(reply, OrderRejected) or (is_final(reply) and _filled(reply) == 0):
            self.rejects += 1  # post-only would have taken ("would immediately match"), or refused: reprice
            self.trader.commit(outcome_of(row, reply))
            return
        assert isinstance(reply, OrderAccepted)
        self.rejects = 0
        resting = _Resting(side, row, price, reply.venue_order_id, self.clock.monotonic())
        self.wake.watch(reply.venue_order_id)
        self.resting[side] = resting
        failpoints.hit("maker.resting")
        self._absorb(resting, reply, time.monotonic_ns())

    def _cancel(self, resting: _Resting) -> None:
        """Cancel a resting order and take what it filled up to the end (a fill may race the cancel)."""
        leg = self.legs[resting.side]
        reply = self.trader.cancel(leg, resting.row.client_id)
        if reply is None:
            self.unresolved = True
            return
        self._absorb(resting, self.trader.settle(leg, resting.row.client_id, reply), time.monotonic_ns())
        if self.resting[resting.side] is resting:  # settle could not finish it
            self.unresolved = True

    def _stop_resting(self) -> None:
        for resting in [r for r in self.resting.values() if r is not None]:
            self._cancel(resting)

    # ---- fills --------------------------------------------------------------------------------------------

    def _listen(self) -> None:
        for side in self.makers:
            venue = self.legs[side].venue
            try:
                watch = self.desk.ask_venue(venue, GetOrderWatch())
            except Exception as exc:  # noqa: BLE001 - no stream: fills are polled
                log.warning("order stream of %s not available: %s", venue, exc)
                continue
            if watch is not None and all(w is not watch for w in self.watches.values()):
                watch.add_listener(self.wake.listener)
            if watch is not None:
                self.watches[side] = watch

    def _unlisten(self) -> None:
        for watch in {id(w): w for w in self.watches.values()}.values():
            watch.remove_listener(self.wake.listener)

    def _hedge_fills(self) -> None:
        """The hedger thread (maker_taker): each fill heard on the stream is counted and hedged at once."""
        seen = 0
        try:
            while not self._stop_hedger.is_set():
                seen = self.wake.wait(seen, WAKE_S)
                for resting in [r for r in list(self.resting.values()) if r is not None]:
                    watch = self.watches.get(resting.side)
                    if watch is None or resting.venue_order_id is None:
                        continue
                    view = watch.order(resting.venue_order_id)
                    if view is not None and view.filled_quantity > resting.seen:
                        heard = self.wake.take(resting.venue_order_id) or time.monotonic_ns()
                        self._count(resting, view.filled_quantity, heard)
                    elif view is not None:
                        self.wake.take(resting.venue_order_id)  # a fill counted from a reply already
                for maker in self.makers:  # fills the phase's thread counted (a cancel's reply) are hedged here
                    if self._hedgeable(maker.opposite) > 0:
                        self._hedge(maker.opposite, self._heard(maker), forced=False)
        except Exception:  # the phase's thread ends the phase and levels the legs
            log.exception("pair %s: the hedger failed", self.pair_id)
            self.hedge_failed = True

    def _absorb_all(self) -> None:
        now = self.clock.monotonic()
        for side, resting in list(self.resting.items()):
            if resting is None or resting.venue_order_id is None:
                continue
            watch = self.watches.get(side)
            # What the stream heard is true whether or not it is trusted now (trust is about what it may have
            # missed): its fills count at once; trust only decides how often REST is read besides.
            trusted = watch is not None and watch.healthy()
            view = watch.order(resting.venue_order_id) if watch is not None else None
            if view is not None:
                self._absorb_view(resting, view)
            # Over REST too: every poll_s while the stream is not trusted, and now and then when it is, since
            # a stream that answers pings may still drop order events (a fill would then wait for the timeout).
            every = TRUSTED_POLL_S if trusted else float(self.config.poll_s)
            if self.resting[side] is not resting or now - resting.polled_at < every:
                continue
            resting.polled_at = now
            leg = self.legs[side]
            try:
                looked = self.desk.ask_venue(leg.venue, LookupOrder(leg.symbol, resting.row.client_id))
            except Exception as exc:  # noqa: BLE001 - try again next time round
                log.warning("lookup of %s on %s failed: %s", resting.row.client_id, leg.venue, exc)
                continue
            if isinstance(looked, OrderAccepted):
                self._absorb(resting, looked, time.monotonic_ns())

    def _absorb_view(self, resting: _Resting, view: OrderView) -> None:
        """A stream's word on a resting order: new fills count at once; its end is read over REST (fees, fills)."""
        heard = self.wake.take(resting.venue_order_id or "") or time.monotonic_ns()
        if view.filled_quantity > resting.seen:
            self._count(resting, view.filled_quantity, heard)
        if view.status is not None and view.status.is_final:
            self._absorb(resting, self._final_word(resting), heard)

    def _final_word(self, resting: _Resting) -> Reply:
        """The venue's totals and fills of an order the stream says has ended (looked up until final)."""
        leg = self.legs[resting.side]
        try:
            looked = self.desk.ask_venue(leg.venue, LookupOrder(leg.symbol, resting.row.client_id))
        except Exception as exc:  # noqa: BLE001 - settle looks it up again
            looked = OrderInFlight(leg.venue, resting.row.client_id, f"lookup failed: {exc!r}")
        if isinstance(looked, OrderUnknown):
            looked = OrderInFlight(leg.venue, resting.row.client_id, "ended on the stream, then not found")
        return self.trader.settle(leg, resting.row.client_id, looked, resting.row.created_at)

    def _absorb(self, resting: _Resting, reply: Reply, heard_ns: int) -> None:
        """Count a reply's fills; a final reply ends the order (its outcome committed)."""
        if isinstance(reply, OrderAccepted):
            self._count(resting, reply.filled_quantity, heard_ns)
        if is_final(reply):
            self.quotes_at = None  # the next order joins the touch as it is now, not as it was
            self.trader.commit(outcome_of(resting.row, reply))
            self.wake.forget(resting.venue_order_id or "")
            self.resting[resting.side] = None

    def _count(self, resting: _Resting, filled: Decimal, heard_ns: int) -> None:
        with self._lock:  # the hedger and the phase's thread may both hear the same fill: it counts once
            if filled <= resting.seen:
                return
            if resting.venue_order_id is not None:
                self.wake.take(resting.venue_order_id)  # counted: its arrival stamp is spent (used or not)
            self.done[resting.side] += filled - resting.seen
            resting.seen = filled
            if resting.heard_ns is None:
                resting.heard_ns = heard_ns
            if self.lead_since is None and self.done[Side.LONG] != self.done[Side.SHORT]:
                self.lead_since = self.clock.monotonic()
        if self.style is ExecutionStyle.MAKER_TAKER:
            hedger = self._hedger
            if hedger is None or not hedger.is_alive() or threading.current_thread() is hedger:
                self._hedge(resting.side.opposite, heard_ns, forced=False)
            else:  # the hedger sends it: the phase's thread never waits behind a hedge (nor its retry backoff)
                self.activity.unhedged(self.pair_id, making.lead(self.done, resting.side) * self.price)
                self.wake.poke()
        self.activity.handled(self.legs[resting.side].venue.value, resting.venue_order_id or "", filled)

    # ---- hedging ------------------------------------------------------------------------------------------

    def _reserve(self, lagging: Side, quantity: Decimal) -> None:
        """Record the hedge a full fill of `quantity` would need, unless one as large is recorded already (the
        phase's thread only). The row is written holding no lock: a hedge going out meanwhile never waits for it
        (it takes the reserved order under `_lock`, or records its own when there is none)."""
        with self._lock:
            held = self.reserved.get(lagging)
            if held is not None and held[0].quantity >= quantity:
                return
        leg = self.legs[lagging]
        message = self.trader.prepare(leg, self.purpose, quantity)
        row = self.desk.repo.get_order(leg.venue, message.client_id)
        with self._lock:
            smaller = self.reserved.get(lagging)
            self.reserved[lagging] = (row, message)
        if smaller is not None:
            self._never_sent(smaller[0])

    def _keep_reserved(self) -> None:
        """maker_taker: a hedge took the order recorded for the resting one's fills (a partial fill): record the
        next now, while nothing is due, so that the next fill's hedge does not wait for its row's write."""
        if self.style is not ExecutionStyle.MAKER_TAKER or self._hedging.locked():
            return
        for side in self.makers:
            resting = self.resting.get(side)
            if resting is not None and resting.seen < resting.row.quantity:
                self._reserve(side.opposite, resting.row.quantity)

    def _release_reserved(self) -> None:
        with self._lock:
            left = list(self.reserved.values())
            self.reserved.clear()
        for row, _ in left:
            self._never_sent(row)

    def _never_sent(self, row: OrderRecord) -> None:
        never = UpdateOrder(row.venue, row.client_id, OrderState.REJECTED, error=NOT_SENT)
        try:
            self.desk.write(never)
        except Exception as exc:  # noqa: BLE001 - left created: recovery's age rule settles it the same way
            log.warning("reserved hedge %s not released: %r", row.client_id, exc)

    def _send_hedge(self, leg: PositionRecord, lagging: Side, quantity: Decimal) -> tuple[Outcome, bool]:
        """The hedge order: the one recorded ahead when it is large enough, else recorded now; sent, settled.
        Returns its outcome and whether it was recorded ahead."""
        with self._lock:
            reserved = self.reserved.get(lagging)
            if reserved is not None and reserved[0].quantity >= quantity:
                del self.reserved[lagging]
            else:
                reserved = None
        if reserved is None:
            return self.trader.place(leg, self.purpose, quantity), False
        row, message = reserved
        message = dataclasses.replace(message, quantity=quantity)
        outcome = self.trader.outcome(leg, row, message, self.desk.ask_venue_async(leg.venue, message))
        if quantity == row.quantity:
            return outcome, True
        first = outcome.writes[0]
        assert isinstance(first, UpdateOrder)
        sized = dataclasses.replace(first, quantity=quantity)  # the row says what was sent
        order = dataclasses.replace(outcome.order, quantity=quantity)
        return dataclasses.replace(outcome, order=order, writes=(sized, *outcome.writes[1:])), True

    def _hedge_due(self) -> None:
        """maker_maker: hedge the leader's excess once it is too large or too old."""
        if self.style is not ExecutionStyle.MAKER_MAKER:
            return
        for side in (Side.LONG, Side.SHORT):
            ahead = making.lead(self.done, side)
            if ahead <= 0 or self._hedgeable(side.opposite) == 0:
                continue  # a lead below one step (or a venue's minimum) is carried: settled after the phase
            too_big = ahead * self.price > self.config.imbalance_usd
            since = self.lead_since if self.lead_since is not None else self.clock.monotonic()
            too_old = self.clock.monotonic() - since > float(self.config.imbalance_age_s)
            if too_big or too_old:
                lagging = self.resting.get(side.opposite)
                if lagging is not None:  # else its fill racing the taker hedge would overshoot the target
                    self._cancel(lagging)
                self._hedge(side.opposite, self._heard(side), forced=False)

    def _hedge_all(self) -> None:
        """The phase is over: level the legs (what is below a step is left to the caller's taker path)."""
        for side in (Side.LONG, Side.SHORT):
            if making.lead(self.done, side) > 0:
                self._hedge(side.opposite, self._heard(side), forced=True)

    def _heard(self, side: Side) -> int:
        resting = self.resting.get(side)
        if resting is not None and resting.heard_ns is not None:
            return resting.heard_ns
        return time.monotonic_ns()

    def _hedge(self, lagging: Side, heard_ns: int, *, forced: bool) -> None:
        """Bring `lagging` level with the other leg with a taker order (retried; what still lags is left to the
        caller, which trims it or, failing that, turns the pair NAKED). One hedge at a time: a second caller
        finds the legs level, or hedges what is still missing."""
        with self._hedging:
            try:
                self._hedge_now(lagging, heard_ns, forced=forced)
            finally:
                self.wake.poke()  # the phase's thread waits while a hedge is out

    def _hedge_now(self, lagging: Side, heard_ns: int, *, forced: bool) -> None:
        rules = self.rules[lagging]
        leg = self.legs[lagging]
        # While a hedge is due, a driver of fake time holds the clock (core/activity.py).
        self.activity.unhedged(self.pair_id, making.lead(self.done, lagging.opposite) * self.price)
        for attempt in range(HEDGE_ATTEMPTS):
            quantity = making.hedge_size(self.done, lagging, self.step, rules.floor(self.price, self.step))
            if quantity <= 0:
                break
            if attempt + 1 == HEDGE_ATTEMPTS:
                self.hedge_failed = True  # unless this last one fills: then the phase ends, unwound by the caller
            failpoints.hit("maker.before_hedge")
            self.activity.sending(1)
            try:
                outcome, ahead = self._send_hedge(leg, lagging, quantity)
            finally:
                self.activity.sending(-1)
            self.trader.commit(outcome)
            reply = outcome.reply
            filled = _filled(reply)
            with self._lock:
                self.done[lagging] += filled
            self._record_hedge(leg, reply, quantity, filled, heard_ns, ahead)
            if not outcome.final:
                self.unresolved = True
                break
            if filled == quantity:
                self.hedge_failed = False
                break
            if attempt + 1 < HEDGE_ATTEMPTS:
                self.clock.sleep(float(self.desk.settings.timings.leg_retry_min_s))
        left = abs(self.done[Side.LONG] - self.done[Side.SHORT]) * self.price
        self.activity.unhedged(self.pair_id, Decimal(0))
        if left == 0:
            self.lead_since = None
            for resting in self.resting.values():
                if resting is not None:
                    resting.heard_ns = None
        elif forced:
            log.info("pair %s: %s left unhedged below one step after the phase", self.pair_id, left)

    def _record_hedge(
        self, leg: PositionRecord, reply: Reply, asked: Decimal, filled: Decimal, heard_ns: int, ahead: bool
    ) -> None:
        wire = self.desk.timings.wire(leg.venue, reply.client_id)
        to_wire = None if wire is None else max(0, wire.sent_ns - heard_ns)
        to_filled = None if wire is None else max(0, wire.done_ns - heard_ns)
        usd = filled * self.price
        # Exposure times how long it lasted: the quantity hedged, from the fill heard to the hedge filled.
        seconds = Decimal(to_filled if to_filled is not None else time.monotonic_ns() - heard_ns) / Decimal(10**9)
        record = {
            "venue": leg.venue.value,
            "quantity": filled,
            "asked": asked,
            "usd": usd,
            "heard_to_wire_us": None if to_wire is None else to_wire // MICRO,
            "heard_to_filled_us": None if to_filled is None else to_filled // MICRO,
            "unhedged_usd_s": (asked * self.price * seconds).quantize(Decimal("0.000001")),
            # Its row was written while the maker order rested (else on the fill -> wire path, a database write).
            "recorded_ahead": ahead,
        }
        self.hedges.append(record)
        self.desk.timings.hedged(to_wire, to_filled)
        text = f"pair {self.pair_id}: hedged {filled} of {asked} on {leg.venue}"
        level = EventLevel.INFO if filled == asked else EventLevel.WARNING
        try:
            self.desk.event(level, "maker_hedge", text, self.pair_id, **record)
        except Exception as exc:  # noqa: BLE001 - a figure; the hedge itself is recorded with its order
            log.warning("maker_hedge event not recorded: %r", exc)


def _filled(reply: Reply) -> Decimal:
    return reply.filled_quantity if isinstance(reply, OrderAccepted) else Decimal(0)


def leg_rules(desk: Desk, legs: dict[Side, PositionRecord]) -> dict[Side, LegRules]:
    """Each leg's market rules, from its venue (clients keep them cached)."""
    rules: dict[Side, LegRules] = {}
    for side, leg in legs.items():
        market = desk.ask_venue(leg.venue, FetchMarket(leg.symbol)).market
        rules[side] = LegRules(market.step_size, market.min_quantity, market.tick_size, market.min_notional)
    return rules


def maker_side(desk: Desk, style: ExecutionStyle, legs: dict[Side, PositionRecord]) -> Side | None:
    """The leg that rests in maker_taker (configured venue, or the one that saves most: core.making); None for
    the other styles. Fee rates are read from the venues (VenueError propagates: no guess)."""
    if style is not ExecutionStyle.MAKER_TAKER:
        return None
    config = desk.settings.trading.execution
    venues = tuple(leg.venue for leg in legs.values())
    fees: dict[Venue, FeeRates] = {}
    if config.maker_venue == "auto":
        fees = {venue: desk.ask_venue(venue, FetchFeeRates()) for venue in venues}
    choice = making.choose_maker(config.maker_venue, venues, fees, desk.settings.points.maker_rates())
    log.info("maker venue %s (%s)", choice.venue, choice.reason)
    return next(side for side, leg in legs.items() if leg.venue is choice.venue)


def mid_price(desk: Desk, leg: PositionRecord) -> Decimal:
    """The leg's venue mid now (its mark when a side of the book is missing)."""
    quote = desk.ask_venue(leg.venue, GetQuote(leg.symbol)).quote
    if quote.bid is not None and quote.ask is not None:
        return (quote.bid + quote.ask) / 2
    if quote.mark is None:
        raise VenueError(leg.venue.value, f"no price for {leg.symbol}")
    return Decimal(quote.mark)
