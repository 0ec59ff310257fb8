"""QuoteBook: the freshest quote per market, written by a feed thread, read by anyone, with its ages.

A venue publishes the touch (bid, ask) and the mark on separate streams, and the mark keeps ticking when the
touch stalls. So each part has its own received time: a fresh mark says nothing about how old the bid/ask is.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from core.clock import Clock
from exchanges.base import Quote


@dataclass(frozen=True, slots=True)
class QuoteUpdate:
    """Part of a quote from one feed message; None fields leave the stored value as it is."""

    symbol: str
    ts: datetime
    bid: Decimal | None = None
    ask: Decimal | None = None
    mark: Decimal | None = None
    funding_rate: Decimal | None = None
    next_funding_time: datetime | None = None


class QuoteBook:
    """Latest quote per symbol plus the monotonic times its last message, touch and mark arrived (feeds go quiet
    silently, and one stream of a feed can go quiet while another keeps ticking)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._quotes: dict[str, Quote] = {}
        self._received: dict[str, float] = {}  # any message
        self._touch_received: dict[str, float] = {}  # a message carrying both bid and ask
        self._mark_received: dict[str, float] = {}  # a message carrying a mark
        self._messages = 0

    def apply(self, update: QuoteUpdate) -> Quote:
        """Merge a partial update into the stored quote and stamp its arrival."""
        with self._lock:
            old = self._quotes.get(update.symbol) or Quote(
                update.symbol, None, None, None, None, None, update.ts, "feed"
            )
            changes = {
                name: getattr(update, name)
                for name in ("bid", "ask", "mark", "funding_rate", "next_funding_time")
                if getattr(update, name) is not None
            }
            quote = replace(old, ts=update.ts, source="feed", **changes)
            self._quotes[update.symbol] = quote
            now = self._clock.monotonic()
            self._received[update.symbol] = now
            # Only a message with both sides renews the touch: after a one-sided one the other side is as old as
            # before, and overstating the touch's age is the safe error (a refused order, an early REST read).
            if update.bid is not None and update.ask is not None:
                self._touch_received[update.symbol] = now
            if update.mark is not None:
                self._mark_received[update.symbol] = now
            self._messages += 1
            return quote

    def get(self, symbol: str) -> Quote | None:
        """The stored quote, or None if no message for it has arrived."""
        with self._lock:
            return self._quotes.get(symbol)

    def age(self, symbol: str) -> float | None:
        """Seconds since the last message of any kind for `symbol`; None if never.

        This says the feed is alive, not that a price is fresh: a mark-only message renews it. Anything that
        trades on or shows the bid/ask wants touch_age."""
        return self._since(self._received, symbol)

    def touch_age(self, symbol: str) -> float | None:
        """Seconds since the last message carrying `symbol`'s bid and ask; None if never."""
        return self._since(self._touch_received, symbol)

    def mark_age(self, symbol: str) -> float | None:
        """Seconds since the last message carrying `symbol`'s mark; None if never."""
        return self._since(self._mark_received, symbol)

    def _since(self, received_at: dict[str, float], symbol: str) -> float | None:
        with self._lock:
            received = received_at.get(symbol)
        return None if received is None else self._clock.monotonic() - received

    def is_stale(self, symbol: str, threshold_s: float) -> bool:
        """True when nothing arrived for `symbol` within `threshold_s` (or ever)."""
        age = self.age(symbol)
        return age is None or age > threshold_s

    @property
    def message_count(self) -> int:
        """How many updates were applied (for tests and metrics)."""
        with self._lock:
            return self._messages
