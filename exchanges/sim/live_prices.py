"""One live venue's touch, mark and funding per symbol, followed for a paper venue that trades on them.

The venue's public websocket feed (a PriceFeed) is the first source. A symbol whose feed has sent no touch
(bid and ask) for `rest_after_s`, marks or not, is read over public REST instead, and every symbol's
funding is read over REST every `funding_every_s` (Hibachi's websocket carries none). Readers never wait on
the network: they read what the threads last stored, with its age, and decide themselves whether it is too
old to trade on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from core.clock import Clock
from exchanges.base import Quote
from exchanges.errors import VenueError
from exchanges.feed import PriceFeed

log = logging.getLogger(__name__)

QuoteReader = Callable[[str], Quote]
FeedFactory = Callable[[list[str]], PriceFeed]  # a venue's (not started) feed for these symbols


@dataclass(frozen=True, slots=True)
class LiveQuote:
    """The freshest live values of one symbol; `age_s` is the age of the touch (bid and ask)."""

    symbol: str
    bid: Decimal  # a symbol with no touch yet has no LiveQuote
    ask: Decimal
    mark: Decimal | None
    funding_rate: Decimal | None
    age_s: float
    source: str  # "feed" or "rest": where the touch came from


def _touch(quote: Quote) -> tuple[Decimal, Decimal] | None:
    """The quote's bid and ask, or None unless it carries both."""
    return (quote.bid, quote.ask) if quote.bid is not None and quote.ask is not None else None


class LiveVenuePrices:
    """Follows one live venue's public market data for a set of symbols (websocket first, REST for quiet ones)."""

    def __init__(
        self,
        venue: str,
        make_feed: FeedFactory,
        read_quote: QuoteReader,
        symbols: list[str],
        clock: Clock,
        *,
        rest_after_s: float = 5.0,
        funding_every_s: float = 60.0,
        poll_s: float = 0.5,
        url: str = "",
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        self.venue = venue
        self.url = url
        self.symbols = list(symbols)
        # Built at start for the symbols the venue listed: one unknown stream may spoil a whole subscription.
        self._feed = make_feed(self.symbols)
        self._make_feed = make_feed
        self._read_quote = read_quote
        self._clock = clock
        self._rest_after_s = rest_after_s
        self._funding_every_s = funding_every_s
        self._poll_s = poll_s
        self._on_stop = on_stop  # releases the REST client's connections
        self._lock = threading.Lock()
        self._rest: dict[str, tuple[Quote, float]] = {}  # symbol -> (quote, monotonic time it was read)
        self._attempted: dict[str, float] = {}  # symbol -> monotonic time of the last REST read, failed or not
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll_loop, name=f"live-prices-{venue}", daemon=True)
        self.rest_reads = 0
        self.rest_errors = 0

    # ---- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> LiveVenuePrices:
        """Read every symbol once over REST (dropping those the venue does not know), then follow them.

        Raises VenueError when not one symbol could be read: paper trading on prices it cannot get is refused
        at start rather than discovered at the first order."""
        known: list[str] = []
        failures: list[str] = []
        for symbol in self.symbols:
            try:
                self._read(symbol)
                known.append(symbol)
            except VenueError as exc:
                failures.append(f"{symbol}: {exc}")
        if not known:
            raise VenueError(self.venue, f"live prices unavailable from {self.url}: {'; '.join(failures)}")
        for failure in failures:
            log.warning("%s live prices: %s (this paper market will not trade)", self.venue, failure)
        if known != self.symbols:
            self.symbols = known
            self._feed = self._make_feed(known)
        self._feed.start()
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the poller and the feed."""
        self._stop.set()
        self._feed.stop()
        if self._thread.is_alive():
            self._thread.join(5)
        if self._on_stop is not None:
            self._on_stop()

    # ---- reading ----------------------------------------------------------------------------------------

    def quote(self, symbol: str) -> LiveQuote | None:
        """The freshest touch, mark and funding of `symbol`, or None if nothing was ever read for it."""
        # The touch's own age: the mark stream keeps ticking when the bid/ask stream stalls, so the age of the
        # feed's last message would pass an old touch off as fresh.
        feed_quote, feed_age = self._feed.book.get(symbol), self._feed.book.touch_age(symbol)
        with self._lock:
            rest = self._rest.get(symbol)
        now = self._clock.monotonic()
        sources: list[tuple[float, Quote, tuple[Decimal, Decimal], str]] = []
        if feed_quote is not None and feed_age is not None and (touch := _touch(feed_quote)) is not None:
            sources.append((feed_age, feed_quote, touch, "feed"))
        if rest is not None and (touch := _touch(rest[0])) is not None:
            sources.append((now - rest[1], rest[0], touch, "rest"))
        if not sources:
            return None
        age, best, (bid, ask), source = min(sources, key=lambda s: s[0])
        others = [q for _, q, _, _ in sources if q is not best]
        other = others[0] if others else None
        mark = best.mark if best.mark is not None else (other.mark if other is not None else None)
        # Backpack's markPrice stream carries funding; Hibachi's feed does not, so REST supplies it there.
        funding = feed_quote.funding_rate if feed_quote is not None else None
        if funding is None and rest is not None:
            funding = rest[0].funding_rate
        return LiveQuote(symbol, bid, ask, mark, funding, age, source)

    def status(self) -> dict[str, object]:
        """What `status` shows: where the prices come from and how old each symbol's touch is."""
        ages: dict[str, float | None] = {}
        for symbol in self.symbols:
            q = self.quote(symbol)
            ages[symbol] = None if q is None else round(q.age_s, 3)
        return {"rest": self.url, "ws": self._feed.url, "feed_connected": self._feed.connected.is_set(), "age_s": ages}

    # ---- polling ----------------------------------------------------------------------------------------

    def _read(self, symbol: str) -> None:
        with self._lock:
            self._attempted[symbol] = self._clock.monotonic()
        quote = self._read_quote(symbol)
        with self._lock:
            self._rest[symbol] = (quote, self._clock.monotonic())
            self.rest_reads += 1

    def _due(self, symbol: str) -> bool:
        # Counted from the last attempt, so a venue that is down is asked once per `rest_after_s`, not per poll.
        with self._lock:
            attempted = self._attempted.get(symbol)
        since = None if attempted is None else self._clock.monotonic() - attempted
        if since is None or since >= self._funding_every_s:
            return True
        feed_age = self._feed.book.touch_age(symbol)  # marks still arriving do not make a stalled touch fresh
        feed_quiet = feed_age is None or feed_age >= self._rest_after_s
        return feed_quiet and since >= self._rest_after_s

    def _poll_loop(self) -> None:
        while not self._stop.wait(self._poll_s):
            for symbol in self.symbols:
                if self._stop.is_set() or not self._due(symbol):
                    continue
                try:
                    self._read(symbol)
                except VenueError as exc:
                    # The stored values just age; the paper venue refuses orders once they are too old.
                    with self._lock:
                        self.rest_errors += 1
                    log.warning("%s live prices: REST read of %s failed: %s", self.venue, symbol, exc)
