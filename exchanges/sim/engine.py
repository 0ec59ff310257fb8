"""Simulated perp venue: accounts, a synthetic book around the shared price, fills, fees, funding, liquidation.

Venue-neutral: it speaks Sides and Decimals; each venue's wire layer turns requests and replies into the
venue's JSON and turns SimReject kinds into the venue's error codes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal
from enum import StrEnum

from core.clock import Clock
from core.domain import Side
from exchanges.base import OrderStatus, OrderType, TimeInForce
from exchanges.sim.faults import Faults
from exchanges.sim.order_log import OrderLog
from exchanges.sim.price import PriceSource
from exchanges.sim.tape import Sweep, Tape, Touch, queue_ahead, resting_fill


class RejectKind(StrEnum):
    """Why the simulator refused an order; the wire layer maps these to venue codes."""

    UNKNOWN_MARKET = "unknown_market"
    BAD_QUANTITY = "bad_quantity"
    BAD_PRICE = "bad_price"
    INSUFFICIENT_MARGIN = "insufficient_margin"
    REDUCE_ONLY = "reduce_only"
    DUPLICATE_CLIENT_ID = "duplicate_client_id"
    NOT_FOUND = "not_found"
    LEVERAGE = "leverage"
    INJECTED = "injected"


class SimRejectError(Exception):
    """An order or request the simulated venue refuses."""

    def __init__(self, kind: RejectKind, message: str, venue_code: str | int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.venue_code = venue_code  # set for injected rejections: the exact code to answer with


@dataclass(frozen=True)
class SimMarket:
    """A simulated market: its asset in the PriceSource and its trading rules."""

    symbol: str
    asset: str
    tick_size: Decimal
    step_size: Decimal
    min_quantity: Decimal
    min_notional: Decimal = Decimal(0)
    initial_margin_rate: Decimal = Decimal("0.02")  # 50x max
    maintenance_margin_rate: Decimal = Decimal("0.0125")
    funding_interval_s: int = 8 * 3600
    funding_rate: Decimal = Decimal("0.0001")
    level_size: Decimal = Decimal(5)
    levels: int = 5
    half_spread_ticks: int = 1


@dataclass
class SimOrder:
    """An order on the simulated venue."""

    id: str
    client_id: str | None
    symbol: str
    side: Side
    order_type: OrderType
    quantity: Decimal
    price: Decimal | None
    time_in_force: TimeInForce
    reduce_only: bool
    created_at: datetime
    status: OrderStatus = OrderStatus.NEW
    filled: Decimal = Decimal(0)
    filled_quote: Decimal = Decimal(0)
    fee: Decimal = Decimal(0)
    expiry_reason: str | None = None
    nonce: int | None = None
    queue_ahead: Decimal = Decimal(0)  # resting limit orders: volume at its price that trades before it

    @property
    def average_price(self) -> Decimal | None:
        """Volume-weighted fill price."""
        return self.filled_quote / self.filled if self.filled else None


@dataclass(frozen=True)
class SimFill:
    """One execution."""

    trade_id: int
    order_id: str
    client_id: str | None
    symbol: str
    side: Side
    price: Decimal
    quantity: Decimal
    fee: Decimal
    is_maker: bool
    realized_pnl: Decimal
    ts: datetime
    system: bool = False  # liquidation


@dataclass(frozen=True)
class SimFunding:
    """One funding settlement of one position."""

    symbol: str
    amount: Decimal  # > 0 received
    rate: Decimal
    quantity: Decimal  # signed position size
    price: Decimal
    ts: datetime


@dataclass(frozen=True)
class MarketFunding:
    """One funding settlement of a market (the venue's public funding-rate history)."""

    symbol: str
    rate: Decimal
    ts: datetime


# Called, under the engine lock, after an order was accepted, filled (in part), cancelled or expired: the one
# place from which a simulator can publish private order and position events.
OrderListener = Callable[["SimAccount", "SimOrder"], None]


@dataclass
class SimPosition:
    """Net position in one market (signed quantity)."""

    quantity: Decimal = Decimal(0)
    entry_price: Decimal = Decimal(0)
    realized_pnl: Decimal = Decimal(0)
    funding: Decimal = Decimal(0)


@dataclass
class SimAccount:
    """One account: collateral, positions, orders and their history."""

    name: str
    collateral: Decimal
    leverage_limit: Decimal = Decimal(10)
    market_imr: dict[str, Decimal] = field(default_factory=dict)
    positions: dict[str, SimPosition] = field(default_factory=dict)
    orders: dict[str, SimOrder] = field(default_factory=dict)
    fills: list[SimFill] = field(default_factory=list)
    funding: list[SimFunding] = field(default_factory=list)
    liquidations: int = 0


def _round_to(value: Decimal, step: Decimal, rounding: str) -> Decimal:
    return (value / step).to_integral_value(rounding=rounding) * step


class SimEngine:
    """One simulated venue's state. Thread-safe: every public method holds the engine lock."""

    def __init__(
        self,
        name: str,
        markets: list[SimMarket],
        prices: PriceSource,
        clock: Clock,
        *,
        maker_fee: Decimal,
        taker_fee: Decimal,
        basis: Decimal = Decimal(0),
        leverage_scope: str = "account",
        tape_seed: int = 0,
    ) -> None:
        self.name = name
        self.markets = {m.symbol: m for m in markets}
        self.prices = prices
        self.clock = clock
        self.maker_fee = maker_fee
        self.taker_fee = taker_fee
        self.basis = basis
        self.leverage_scope = leverage_scope
        self.faults = Faults(clock)
        self.tape = Tape(f"{tape_seed}:{name}")  # other traders' prints: what fills resting orders
        self.accounts: dict[str, SimAccount] = {}
        self.lock = threading.RLock()
        self.next_order_id = 578721673790138368
        self.next_trade_id = 1
        self.version = 0  # grows on every change of state: what a persisting wrapper saves on
        # The accounts changed since a saver last took them (exchanges/sim/store.py re-encodes those alone);
        # None: any may have (nothing taken yet, or a change not tied to one account).
        self._changed_accounts: set[str] | None = None
        # Per account, the orders that may still fill (resting limit orders): tick() and the duplicate client id
        # check look at these alone, not at an order history that grows all run long.
        self._open: dict[str, dict[str, SimOrder]] = {}
        self.funding_log: list[MarketFunding] = []
        self.order_listeners: list[OrderListener] = []
        self.order_log = OrderLog()  # every order place() saw, with who sent it (not saved: one run's story)
        start = clock.now().timestamp()
        self._next_funding = {
            m.symbol: (int(start) // m.funding_interval_s + 1) * m.funding_interval_s for m in markets
        }

    # ---- prices -----------------------------------------------------------------------------------------

    def market(self, symbol: str) -> SimMarket:
        """The market, or SimRejectError(UNKNOWN_MARKET)."""
        if symbol not in self.markets:
            raise SimRejectError(RejectKind.UNKNOWN_MARKET, f"unknown market {symbol}")
        return self.markets[symbol]

    def mark(self, symbol: str) -> Decimal:
        """Mark price: the shared price plus this venue's basis, on the tick grid."""
        m = self.market(symbol)
        raw = self.prices.price(m.asset) * (1 + self.basis)
        return _round_to(raw, m.tick_size, ROUND_HALF_UP)

    def book(self, symbol: str) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """(bids high->low, asks low->high), `levels` deep, `level_size` each, around the mark."""
        m = self.market(symbol)
        mark = self.mark(symbol)
        gap = m.tick_size * m.half_spread_ticks
        bids = [(mark - gap - i * m.tick_size, m.level_size) for i in range(m.levels)]
        asks = [(mark + gap + i * m.tick_size, m.level_size) for i in range(m.levels)]
        return [b for b in bids if b[0] > 0], asks

    def schedule_funding(self, symbol: str, at_s: int) -> None:
        """Move the next funding settlement of `symbol` to epoch second `at_s` (tests, demos)."""
        with self.lock:
            self._next_funding[symbol] = at_s

    def next_funding_ts(self, symbol: str) -> int:
        """Epoch seconds of the next funding settlement of `symbol`."""
        with self.lock:
            return self._next_funding[symbol]

    # ---- accounts ---------------------------------------------------------------------------------------

    def _new_order_id(self) -> str:
        self.next_order_id += 1
        return str(self.next_order_id - 1)

    def _new_trade_id(self) -> int:
        self.next_trade_id += 1
        return self.next_trade_id - 1

    def reindex(self) -> None:
        """Rebuild the index of orders that may still fill (after accounts' orders were replaced wholesale)."""
        with self.lock:
            self._open = {
                name: {o.id: o for o in acc.orders.values() if not o.status.is_final}
                for name, acc in self.accounts.items()
            }

    def touch(self, account: SimAccount | None = None) -> None:
        """Note a change of state made outside the engine's own methods (a wire layer setting a field): of
        `account`, or of anything (None)."""
        with self.lock:
            self._changed(account)

    def _changed(self, account: SimAccount | None) -> None:
        """Count a change of state (under the lock): of `account`, or of anything (None)."""
        self.version += 1
        if account is None:
            self._changed_accounts = None
        elif self._changed_accounts is not None:
            self._changed_accounts.add(account.name)

    def changed_accounts(self) -> set[str] | None:
        """The names of the accounts changed since the saver last forgot them (None: any may have). The saver
        reads them, encodes those accounts and forgets them in one hold of the lock."""
        with self.lock:
            return None if self._changed_accounts is None else set(self._changed_accounts)

    def forget_changed_accounts(self) -> None:
        """The saver has encoded every change so far."""
        with self.lock:
            self._changed_accounts = set()

    @property
    def next_funding(self) -> dict[str, int]:
        """Epoch second of each market's next funding settlement (for persistence)."""
        with self.lock:
            return dict(self._next_funding)

    def open_account(self, name: str, collateral: Decimal) -> SimAccount:
        """Create (or return) an account funded with `collateral`."""
        with self.lock:
            if name not in self.accounts:
                self.accounts[name] = SimAccount(name=name, collateral=collateral)
                self._changed(self.accounts[name])
            return self.accounts[name]

    def leverage_for(self, account: SimAccount, symbol: str) -> Decimal:
        """Effective leverage for new exposure in `symbol` (account limit or per-market rate)."""
        m = self.markets[symbol]
        venue_max = 1 / m.initial_margin_rate
        if self.leverage_scope == "market":
            return 1 / account.market_imr.get(symbol, m.initial_margin_rate)
        return min(account.leverage_limit, venue_max)

    def set_market_imr(self, account: SimAccount, symbol: str, rate: Decimal) -> None:
        """Per-market initial margin rate (leverage = 1 / rate); must lie in [default rate, 1]."""
        with self.lock:
            m = self.market(symbol)
            if not m.initial_margin_rate <= rate <= 1:
                raise SimRejectError(
                    RejectKind.LEVERAGE, f"initial margin rate {rate} outside [{m.initial_margin_rate}, 1]"
                )
            account.market_imr[symbol] = rate
            self._changed(account)

    def unrealized(self, account: SimAccount) -> Decimal:
        """Sum of positions' PnL at mark."""
        total = Decimal(0)
        for symbol, pos in account.positions.items():
            if pos.quantity:
                total += (self.mark(symbol) - pos.entry_price) * pos.quantity
        return total

    def equity(self, account: SimAccount) -> Decimal:
        """Collateral plus unrealized PnL."""
        with self.lock:
            return account.collateral + self.unrealized(account)

    def _sum_notional(self, account: SimAccount, factor: Callable[[str], Decimal]) -> Decimal:
        """Sum over open positions of |quantity| * mark * factor(symbol)."""
        with self.lock:
            return sum(
                (abs(p.quantity) * self.mark(s) * factor(s) for s, p in account.positions.items() if p.quantity),
                Decimal(0),
            )

    def exposure(self, account: SimAccount) -> Decimal:
        """Sum of |quantity| * mark."""
        return self._sum_notional(account, lambda _s: Decimal(1))

    def initial_requirement(self, account: SimAccount) -> Decimal:
        """Margin the open positions tie up."""
        return self._sum_notional(account, lambda s: 1 / self.leverage_for(account, s))

    def maintenance_requirement(self, account: SimAccount) -> Decimal:
        """Equity below this liquidates the account."""
        return self._sum_notional(account, lambda s: self.markets[s].maintenance_margin_rate)

    def liquidation_price(self, account: SimAccount, symbol: str) -> Decimal | None:
        """Price of `symbol` at which equity meets maintenance, other positions held at mark."""
        with self.lock:
            pos = account.positions.get(symbol)
            if pos is None or not pos.quantity:
                return None
            m = self.markets[symbol]
            mark = self.mark(symbol)
            others_eq = self.equity(account) - (mark - pos.entry_price) * pos.quantity
            others_mm = self.maintenance_requirement(account) - abs(pos.quantity) * mark * m.maintenance_margin_rate
            # Solve others_eq + (P - entry) q = others_mm + |q| P mmr for P.
            q = pos.quantity
            denominator = q - abs(q) * m.maintenance_margin_rate
            if denominator == 0:
                return None
            price = (others_mm - others_eq + pos.entry_price * q) / denominator
            return max(price, Decimal(0)).quantize(m.tick_size)

    # ---- orders -----------------------------------------------------------------------------------------

    def place(
        self,
        account: SimAccount,
        *,
        symbol: str,
        side: Side,
        order_type: OrderType,
        quantity: Decimal,
        price: Decimal | None = None,
        time_in_force: TimeInForce = TimeInForce.GTC,
        reduce_only: bool = False,
        client_id: str | None = None,
        nonce: int | None = None,
    ) -> SimOrder:
        """Validate, then fill (market/IOC), reject (post-only that would take) or rest the order."""
        with self.lock:
            try:
                order = self._place(account, symbol, side, order_type, quantity, price, time_in_force, reduce_only,
                                    client_id, nonce)  # fmt: skip
            except SimRejectError as exc:  # the venue saw it all the same: a refused order is logged too
                now = self.clock.now()
                self.order_log.record(now, account.name, client_id, None, symbol, side.value, exc.kind.value)
                raise
            self.order_log.record(self.clock.now(), account.name, client_id, order.id, symbol, side.value)
            self._order_changed(account, order)
            return order

    def _order_changed(self, account: SimAccount, order: SimOrder) -> None:
        for listener in self.order_listeners:
            listener(account, order)

    def _place(
        self,
        account: SimAccount,
        symbol: str,
        side: Side,
        order_type: OrderType,
        quantity: Decimal,
        price: Decimal | None,
        time_in_force: TimeInForce,
        reduce_only: bool,
        client_id: str | None,
        nonce: int | None,
    ) -> SimOrder:
        with self.lock:
            self.tick()
            self._changed(account)
            injected = self.faults.take_reject(reduce_only)
            if injected is not None:
                raise SimRejectError(RejectKind.INJECTED, injected.message, venue_code=injected.code)
            m = self.market(symbol)
            self._validate(account, m, quantity, price, order_type, client_id)
            order = SimOrder(
                id=self._new_order_id(),
                client_id=client_id,
                symbol=symbol,
                side=side,
                order_type=order_type,
                quantity=quantity,
                price=price,
                time_in_force=time_in_force,
                reduce_only=reduce_only,
                created_at=self.clock.now(),
                nonce=nonce,
            )
            if reduce_only:
                pos = account.positions.get(symbol, SimPosition()).quantity
                reducible = -pos if side is Side.LONG else pos
                if reducible <= 0:
                    order.status = OrderStatus.EXPIRED
                    order.expiry_reason = "ReduceOnlyNotReduced"
                    account.orders[order.id] = order
                    return order
                order.quantity = min(quantity, reducible)
            crosses = self._crosses(order)
            post_only = order_type is OrderType.LIMIT and time_in_force is TimeInForce.POST_ONLY
            if post_only and (crosses or self.faults.take_post_only_expiry()):
                order.status = OrderStatus.EXPIRED
                order.expiry_reason = "PostOnlyTaker"
                account.orders[order.id] = order
                return order
            if not reduce_only:
                self._check_margin(account, order)
            account.orders[order.id] = order
            if order_type is OrderType.MARKET or crosses:
                fraction = self.faults.take_partial()
                limit = order.quantity
                if fraction is not None:
                    limit = _round_to(order.quantity * fraction, m.step_size, ROUND_DOWN)
                self._take(account, order, limit)
                unfilled = order.filled < order.quantity
                if unfilled and (order_type is OrderType.MARKET or time_in_force is TimeInForce.IOC or fraction):
                    # The rest is cancelled; what filled stays in `filled` (Backpack reports this as Expired).
                    order.status = OrderStatus.EXPIRED
                    order.expiry_reason = "ImmediateOrCancel"
            elif time_in_force is TimeInForce.IOC:
                order.status = OrderStatus.EXPIRED
                order.expiry_reason = "ImmediateOrCancel"
            if not order.status.is_final:
                self._rest(order)
                self._open.setdefault(account.name, {})[order.id] = order
            return order

    def _touch(self, symbol: str) -> Touch:
        bids, asks = self.book(symbol)
        return (bids[0][0] if bids else None), (asks[0][0] if asks else None)

    def _rest(self, order: SimOrder) -> None:
        """Queue a limit order that now rests behind the size displayed at its price."""
        assert order.price is not None
        bids, asks = self.book(order.symbol)
        order.queue_ahead = queue_ahead(order.side, order.price, bids, asks)
        self.tape.watch(order.symbol, self._touch(order.symbol))

    def _validate(
        self,
        account: SimAccount,
        m: SimMarket,
        quantity: Decimal,
        price: Decimal | None,
        order_type: OrderType,
        client_id: str | None,
    ) -> None:
        if quantity <= 0 or quantity % m.step_size != 0:
            raise SimRejectError(RejectKind.BAD_QUANTITY, f"quantity {quantity} is not a multiple of {m.step_size}")
        if quantity < m.min_quantity:
            raise SimRejectError(RejectKind.BAD_QUANTITY, f"quantity {quantity} is below the minimum {m.min_quantity}")
        if order_type is OrderType.LIMIT and (price is None or price <= 0 or price % m.tick_size != 0):
            raise SimRejectError(RejectKind.BAD_PRICE, f"price {price} is not a multiple of {m.tick_size}")
        reference = price if price is not None else self.mark(m.symbol)
        if quantity * reference < m.min_notional:
            raise SimRejectError(
                RejectKind.BAD_QUANTITY, f"notional {quantity * reference} is below the minimum {m.min_notional}"
            )
        if client_id is not None and any(
            o.client_id == client_id and not o.status.is_final for o in self._open.get(account.name, {}).values()
        ):
            raise SimRejectError(RejectKind.DUPLICATE_CLIENT_ID, f"an open order already has client id {client_id}")

    def _crosses(self, order: SimOrder) -> bool:
        if order.order_type is OrderType.MARKET:
            return True
        assert order.price is not None
        bid, ask = self._touch(order.symbol)
        if order.side is Side.LONG:
            return ask is not None and order.price >= ask
        return bid is not None and order.price <= bid

    def _check_margin(self, account: SimAccount, order: SimOrder) -> None:
        symbol = order.symbol
        pos = account.positions.get(symbol, SimPosition()).quantity
        signed = order.quantity if order.side is Side.LONG else -order.quantity
        added = max(Decimal(0), abs(pos + signed) - abs(pos))
        if added == 0:
            return
        mark = self.mark(symbol)
        needed = self.initial_requirement(account) + added * mark / self.leverage_for(account, symbol)
        fee = order.quantity * mark * self.taker_fee
        if needed + fee > self.equity(account):
            raise SimRejectError(
                RejectKind.INSUFFICIENT_MARGIN,
                f"insufficient margin: needs {needed.quantize(Decimal('0.01'))} of "
                f"{self.equity(account).quantize(Decimal('0.01'))} equity",
            )

    def _take(self, account: SimAccount, order: SimOrder, limit: Decimal) -> None:
        bids, asks = self.book(order.symbol)
        levels = asks if order.side is Side.LONG else bids
        remaining = limit
        for level_price, size in levels:
            if remaining <= 0:
                break
            if (
                order.order_type is OrderType.LIMIT
                and order.price is not None
                and (
                    (order.side is Side.LONG and level_price > order.price)
                    or (order.side is Side.SHORT and level_price < order.price)
                )
            ):
                break
            qty = min(remaining, size)
            self._fill(account, order, level_price, qty, is_maker=False)
            remaining -= qty

    def _fill(self, account: SimAccount, order: SimOrder, price: Decimal, qty: Decimal, *, is_maker: bool) -> None:
        self._changed(account)
        rate = self.maker_fee if is_maker else self.taker_fee
        fee = (price * qty * rate).quantize(Decimal("0.00000001"))
        realized = self._apply_position(account, order.symbol, order.side, qty, price)
        account.collateral += realized - fee
        order.filled += qty
        order.filled_quote += price * qty
        order.fee += fee
        order.status = OrderStatus.FILLED if order.filled >= order.quantity else OrderStatus.PARTIALLY_FILLED
        account.fills.append(
            SimFill(
                trade_id=self._new_trade_id(),
                order_id=order.id,
                client_id=order.client_id,
                symbol=order.symbol,
                side=order.side,
                price=price,
                quantity=qty,
                fee=fee,
                is_maker=is_maker,
                realized_pnl=realized,
                ts=self.clock.now(),
                system=order.client_id is None and order.expiry_reason == "Liquidation",
            )
        )

    @staticmethod
    def _apply_position(account: SimAccount, symbol: str, side: Side, qty: Decimal, price: Decimal) -> Decimal:
        pos = account.positions.setdefault(symbol, SimPosition())
        signed = qty if side is Side.LONG else -qty
        realized = Decimal(0)
        if pos.quantity == 0 or (pos.quantity > 0) == (signed > 0):
            total = pos.quantity + signed
            pos.entry_price = (pos.entry_price * abs(pos.quantity) + price * qty) / abs(total)
            pos.quantity = total
            return realized
        closing = min(abs(signed), abs(pos.quantity))
        direction = 1 if pos.quantity > 0 else -1
        realized = (price - pos.entry_price) * closing * direction
        pos.realized_pnl += realized
        pos.quantity += signed
        if pos.quantity == 0:
            pos.entry_price = Decimal(0)
        elif (pos.quantity > 0) != (direction > 0):
            pos.entry_price = price  # flipped through zero: the remainder opened at this price
        return realized

    def modify(self, account: SimAccount, order_id: str, *, quantity: Decimal, price: Decimal | None) -> SimOrder:
        """Change a resting, unfilled order's quantity and price: it goes to the back of the queue at its new
        price, or takes from the book at once if the new price crosses it (a post-only one is refused)."""
        with self.lock:
            self.tick()
            order = self.find_order(account, order_id=order_id, open_only=True)
            if order.filled:
                raise SimRejectError(RejectKind.BAD_QUANTITY, "a partially filled order cannot be modified")
            self._validate(account, self.market(order.symbol), quantity, price, order.order_type, None)
            old = order.quantity, order.price
            order.quantity, order.price = quantity, price
            crosses = self._crosses(order)
            if crosses and order.time_in_force is TimeInForce.POST_ONLY:
                order.quantity, order.price = old
                raise SimRejectError(RejectKind.BAD_PRICE, f"post-only price {price} would take")
            self._changed(account)
            if crosses:
                self._take(account, order, order.quantity)
            else:
                self._rest(order)
            self._order_changed(account, order)
            if order.status.is_final:
                self._open.get(account.name, {}).pop(order.id, None)
            return order

    def cancel(self, account: SimAccount, *, order_id: str | None = None, client_id: str | None = None) -> SimOrder:
        """Cancel a resting order by venue id or client id."""
        with self.lock:
            order = self.find_order(account, order_id=order_id, client_id=client_id, open_only=True)
            fraction = self.faults.take_cancel_fill() if order.order_type is OrderType.LIMIT else None
            if fraction is not None and self._fill_part(account, order, fraction, leave=True):  # it beat the cancel
                self.faults.note_taken("fill_racing_cancel")
            order.status = OrderStatus.CANCELLED
            self._changed(account)
            self._order_changed(account, order)
            return order

    def find_order(
        self,
        account: SimAccount,
        *,
        order_id: str | None = None,
        client_id: str | None = None,
        nonce: int | None = None,
        open_only: bool = False,
    ) -> SimOrder:
        """The newest order matching the id given; SimRejectError(NOT_FOUND) otherwise."""
        with self.lock:
            for order in reversed(list(account.orders.values())):
                matches = (
                    (order_id is not None and order.id == order_id)
                    or (client_id is not None and order.client_id == client_id)
                    or (nonce is not None and order.nonce == nonce)
                )
                if matches and (not open_only or not order.status.is_final):
                    return order
            raise SimRejectError(RejectKind.NOT_FOUND, "order not found")

    # ---- time passing -----------------------------------------------------------------------------------

    def tick(self) -> None:
        """Fill resting orders from the tape's prints, settle due funding, liquidate accounts under maintenance."""
        with self.lock:
            active = {o.symbol for resting in self._open.values() for o in resting.values()}
            self.tape.forget(active)
            touches = {s: self._touch(s) for s in sorted(active)}
            sweeps = {s: self.tape.step(s, t, self.markets[s].tick_size) for s, t in touches.items()}
            forced = self.faults.take_resting_partial(self.clock.now()) if active else None
            for account in self.accounts.values():
                resting = self._open.get(account.name, {})
                for order in list(resting.values()):
                    if order.order_type is OrderType.LIMIT and not order.status.is_final:
                        self._fill_resting(account, order, sweeps[order.symbol], touches[order.symbol])
                    limit_open = order.order_type is OrderType.LIMIT and not order.status.is_final
                    if forced is not None and limit_open and self._fill_part(account, order, forced):
                        self.faults.note_taken("resting_partial")
                    if order.status.is_final:
                        del resting[order.id]
            self._settle_funding()
            for account in self.accounts.values():
                maintenance = self.maintenance_requirement(account)
                if maintenance > 0 and self.equity(account) < maintenance:
                    self._liquidate(account)

    def _fill_resting(self, account: SimAccount, order: SimOrder, sweeps: list[Sweep], touch: Touch) -> None:
        """Fill a resting limit order, as a maker at its own price, by what the tape printed at or through it."""
        assert order.price is not None  # _validate gave every limit order one
        m = self.markets[order.symbol]
        bid, ask = touch
        result = resting_fill(
            self.tape, side=order.side, price=order.price, remaining=order.quantity - order.filled,
            ahead=order.queue_ahead, sweeps=sweeps, opposite_touch=ask if order.side is Side.LONG else bid,
            level_size=m.level_size, lot=m.step_size,
        )  # fmt: skip
        if result.ahead != order.queue_ahead:
            order.queue_ahead = result.ahead
            self._changed(account)
        if result.quantity > 0:
            self._fill(account, order, order.price, result.quantity, is_maker=True)
            self._order_changed(account, order)

    def _fill_part(self, account: SimAccount, order: SimOrder, fraction: Decimal, *, leave: bool = False) -> bool:
        """Fill `fraction` of what a resting limit order still wants (at least one step; with `leave`, never all
        of it) as a maker at its price (fault injection); False when nothing filled."""
        assert order.price is not None
        step = self.markets[order.symbol].step_size
        left = order.quantity - order.filled
        quantity = min(left - step if leave else left, max(step, _round_to(left * fraction, step, ROUND_DOWN)))
        if quantity <= 0:
            return False
        self._fill(account, order, order.price, quantity, is_maker=True)
        self._order_changed(account, order)
        return True

    def _settle_funding(self) -> None:
        now = int(self.clock.now().timestamp())
        for symbol, first_due in list(self._next_funding.items()):
            m = self.markets[symbol]
            due = first_due
            while due <= now:
                self._changed(None)  # every account with a position pays or is paid
                price = self.mark(symbol)
                self.funding_log.append(MarketFunding(symbol, m.funding_rate, self.clock.now()))
                for account in self.accounts.values():
                    pos = account.positions.get(symbol)
                    if pos is None or not pos.quantity:
                        continue
                    # Positive rate: longs pay shorts.
                    amount = (-pos.quantity * price * m.funding_rate).quantize(Decimal("0.00000001"))
                    account.collateral += amount
                    pos.funding += amount
                    account.funding.append(
                        SimFunding(symbol, amount, m.funding_rate, pos.quantity, price, self.clock.now())
                    )
                due += m.funding_interval_s
            self._next_funding[symbol] = due

    def _liquidate(self, account: SimAccount) -> None:
        self._changed(account)
        account.liquidations += 1
        for symbol, pos in list(account.positions.items()):
            if not pos.quantity:
                continue
            side = Side.SHORT if pos.quantity > 0 else Side.LONG
            order = SimOrder(
                id=self._new_order_id(),
                client_id=None,
                symbol=symbol,
                side=side,
                order_type=OrderType.MARKET,
                quantity=abs(pos.quantity),
                price=None,
                time_in_force=TimeInForce.IOC,
                reduce_only=True,
                created_at=self.clock.now(),
                expiry_reason="Liquidation",
            )
            account.orders[order.id] = order
            self._fill(account, order, self.mark(symbol), abs(pos.quantity), is_maker=False)
            self._order_changed(account, order)
