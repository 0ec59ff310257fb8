"""QuoteBook: the freshest quote per market, written by a feed thread, read by anyone, with its age."""

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
    """Latest quote per symbol plus the monotonic time its last message arrived (feeds go quiet silently)."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._quotes: dict[str, Quote] = {}
        self._received: dict[str, float] = {}
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
            self._received[update.symbol] = self._clock.monotonic()
            self._messages += 1
            return quote

    def get(self, symbol: str) -> Quote | None:
        """The stored quote, or None if no message for it has arrived."""
        with self._lock:
            return self._quotes.get(symbol)

    def age(self, symbol: str) -> float | None:
        """Seconds since the last message for `symbol`; None if never."""
        with self._lock:
            received = self._received.get(symbol)
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
