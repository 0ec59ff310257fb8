"""A simulated venue whose book, mark and funding follow a live venue's market instead of the random walk.

Matching, margin, fees and liquidation stay the simulator's own; only the prices change. The book is the
live touch (bid, ask) with the simulator's levels behind it, so a market order of paper size fills at the
touch: a buy at the ask, a sell at the bid. An order is refused, in the venue's own error shape, when the
live touch is older than `max_age_s`: a paper fill at an old price would be a fiction.
"""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any, Protocol

from exchanges.sim.engine import RejectKind, SimAccount, SimEngine, SimOrder, SimRejectError
from exchanges.sim.live_prices import LiveQuote


class LiveBook(Protocol):
    """Where a live-priced engine reads its prices (LiveVenuePrices, or a stub in tests)."""

    def quote(self, symbol: str) -> LiveQuote | None:
        """The freshest live values of `symbol`, or None if none were ever read."""
        ...


class LiveSimEngine(SimEngine):
    """A SimEngine priced by a LiveBook; refuses orders when the live touch is stale."""

    def __init__(self, *args: Any, live: LiveBook, max_age_s: float, refusal_code: str | int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.live = live
        self.max_age_s = max_age_s
        self.refusal_code = refusal_code  # the venue's code for a refused order (Backpack text, Hibachi int)
        self.refused_stale = 0

    def _live(self, symbol: str) -> LiveQuote:
        quote = self.live.quote(symbol)
        if quote is None:
            # Markets are kept only once the live venue answered for them, so this means a wiring mistake.
            raise SimRejectError(RejectKind.UNKNOWN_MARKET, f"no live price for {symbol}")
        return quote

    def mark(self, symbol: str) -> Decimal:
        """The live venue's mark (the middle of its touch when it published none)."""
        self.market(symbol)
        quote = self._live(symbol)
        if quote.mark is not None:
            return quote.mark
        return (quote.bid + quote.ask) / 2

    def book(self, symbol: str) -> tuple[list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """The live touch at the top, the simulator's `levels` behind it one tick apart."""
        m = self.market(symbol)
        quote = self._live(symbol)
        bid, ask = quote.bid, quote.ask
        bids = [(bid - i * m.tick_size, m.level_size) for i in range(m.levels)]
        asks = [(ask + i * m.tick_size, m.level_size) for i in range(m.levels)]
        return [b for b in bids if b[0] > 0], asks

    def place(self, account: SimAccount, *, symbol: str, **kwargs: Any) -> SimOrder:
        """Refuse when the live touch is too old to trade on; otherwise the simulator's own matching."""
        with self.lock:
            self.market(symbol)
            quote = self.live.quote(symbol)
            if quote is None or quote.age_s > self.max_age_s:
                self.refused_stale += 1
                age = "never received" if quote is None else f"{quote.age_s:.1f} s old"
                raise SimRejectError(
                    RejectKind.INJECTED,
                    f"Paper venue: the live price of {symbol} is {age} (limit {self.max_age_s:g} s); "
                    "order refused, nothing filled",
                    venue_code=self.refusal_code,
                )
            return super().place(account, symbol=symbol, **kwargs)

    def tick(self) -> None:
        """Take each market's live funding rate before settling what is due."""
        with self.lock:
            for symbol, m in list(self.markets.items()):
                quote = self.live.quote(symbol)
                if quote is not None and quote.funding_rate is not None and quote.funding_rate != m.funding_rate:
                    self.markets[symbol] = replace(m, funding_rate=quote.funding_rate)
            super().tick()
