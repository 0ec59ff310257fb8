"""A websocket price feed in its own thread: connect, subscribe, parse into a QuoteBook, reconnect.

Venue-neutral: a venue supplies its URL, subscribe frames and parser. A feed is judged by the age of its
last data message (QuoteBook.age), never by the socket's state: websockets go quiet without closing. A price
is judged by the age of its own part (QuoteBook.touch_age, mark_age): one stream can stall while another ticks.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from websockets.sync.client import ClientConnection, connect

from core.clock import Clock
from exchanges.base import Quote
from exchanges.errors import VenueError
from exchanges.quotes import QuoteBook, QuoteUpdate
from exchanges.reconnect import run_reconnecting

log = logging.getLogger(__name__)

Parser = Callable[[str | bytes], QuoteUpdate | None]


class PriceFeed:
    """Keeps a QuoteBook current from a venue's public websocket, reconnecting with backoff."""

    def __init__(
        self,
        venue: str,
        url: str,
        subscribe_frames: list[str],
        parser: Parser,
        book: QuoteBook,
        clock: Clock,
        *,
        on_quote: Callable[[Quote], None] | None = None,
        reconnect_min_s: float = 0.5,
        reconnect_max_s: float = 30.0,
        healthy_after_s: float = 5.0,
        ping_interval_s: float = 20.0,
        recv_tick_s: float = 0.5,
        symbols: tuple[str, ...] = (),
    ) -> None:
        self.venue = venue
        self.symbols = symbols
        self.url = url
        self.book = book
        self._frames = subscribe_frames
        self._parser = parser
        self._clock = clock
        self._on_quote = on_quote
        self._reconnect_min_s = reconnect_min_s
        self._reconnect_max_s = reconnect_max_s
        self._healthy_after_s = healthy_after_s
        self._ping_interval_s = ping_interval_s
        self._recv_tick_s = recv_tick_s
        self._stop = threading.Event()
        self._ws: ClientConnection | None = None
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=f"feed-{venue}", daemon=True)
        self.connections = 0
        self.errors = 0
        self.connected = threading.Event()

    def start(self) -> PriceFeed:
        """Start the feed thread."""
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and close the socket (unblocks a pending receive at once)."""
        self._stop.set()
        with self._lock:
            ws = self._ws
        if ws is not None:
            ws.close()
        self._thread.join(timeout_s)

    def age(self, symbol: str) -> float | None:
        """Seconds since the last message of any kind for `symbol` (None: never); a mark alone renews it."""
        return self.book.age(symbol)

    def touch_age(self, symbol: str) -> float | None:
        """Seconds since `symbol`'s last bid and ask (None: never)."""
        return self.book.touch_age(symbol)

    def mark_age(self, symbol: str) -> float | None:
        """Seconds since `symbol`'s last mark (None: never)."""
        return self.book.mark_age(symbol)

    def is_stale(self, symbol: str, threshold_s: float) -> bool:
        """True when `symbol` has had no message for `threshold_s` seconds."""
        return self.book.is_stale(symbol, threshold_s)

    def _run(self) -> None:
        run_reconnecting(
            f"{self.venue} feed",
            self._stop,
            self._clock,
            self._session,
            self._ended,
            min_s=self._reconnect_min_s,
            max_s=self._reconnect_max_s,
            healthy_after_s=self._healthy_after_s,
        )

    def _ended(self) -> None:
        self.connected.clear()
        with self._lock:
            self._ws = None

    def _session(self) -> None:
        with connect(
            self.url,
            open_timeout=10,
            ping_interval=self._ping_interval_s,
            ping_timeout=self._ping_interval_s,
            close_timeout=2,
            max_size=1 << 20,
        ) as ws:
            with self._lock:
                if self._stop.is_set():
                    return
                self._ws = ws
            for frame in self._frames:
                ws.send(frame)
            self.connections += 1
            self.connected.set()
            log.info("%s feed connected to %s (%d subscribe frames)", self.venue, self.url, len(self._frames))
            while not self._stop.is_set():
                try:
                    raw = ws.recv(timeout=self._recv_tick_s)
                except TimeoutError:
                    continue
                self._handle(raw)

    def _handle(self, raw: str | bytes) -> None:
        try:
            update = self._parser(raw)
        except VenueError as exc:
            self.errors += 1
            log.warning("%s feed: %s", self.venue, exc)
            return
        if update is None:
            return
        quote = self.book.apply(update)
        if self._on_quote is not None:
            self._on_quote(quote)
