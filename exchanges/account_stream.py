"""A venue's private account stream in its own thread: connect, authenticate and subscribe (the venue's
dialect says how), read order events into an OrderBook, reconnect with backoff, and let a caller wait for an
order to reach a state it needs.

A stream is trusted only while connected, subscribed and heard from recently (a message, or the answer to
our websocket ping): private streams can go quiet without closing, and an order waited on over a stream that
is not trusted would only delay the REST read that must follow. Each subscription starts a new `epoch`: an
order sent during one epoch and waited on in another may have had events in the gap, so the wait gives up.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from websockets.sync.client import ClientConnection, connect

from core.clock import Clock
from exchanges.account_book import OrderBook, OrderEvent, OrderView
from exchanges.errors import VenueError
from exchanges.reconnect import run_reconnecting

log = logging.getLogger(__name__)


class StreamRefusedError(VenueError):
    """The venue refused our login or subscription, or stopped answering it: the session starts again."""


@dataclass(frozen=True, slots=True)
class StreamReading:
    """What one frame meant: order events, that the subscription is now live, or that it was refused."""

    events: tuple[OrderEvent, ...] = ()
    subscribed: bool = False
    refused: str | None = None


class AccountDialect(Protocol):
    """How one venue's private stream is opened, kept alive and read. Called on the stream's thread only."""

    venue: str
    url: str
    # True when the venue confirms the subscription (a reading with subscribed=True); False: live once sent.
    acknowledges: bool

    def headers(self) -> dict[str, str]:
        """HTTP headers of the websocket handshake."""
        ...

    def opening(self) -> list[str]:
        """Frames to send right after connecting (signed now, so every reconnect signs afresh)."""
        ...

    def keepalive(self) -> list[str]:
        """Frames to send every keepalive period besides our websocket ping (e.g. a listen-key ping)."""
        ...

    def read(self, raw: str | bytes) -> StreamReading:
        """One received frame; raises VenueError for a frame it cannot read."""
        ...


@dataclass(frozen=True, slots=True)
class StreamTimings:
    """How often to check the link, when to stop trusting it, and how to back off after losing it."""

    keepalive_s: float = 5.0
    quiet_after_s: float = 15.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 30.0
    healthy_after_s: float = 5.0
    recv_tick_s: float = 0.25
    # Waits in a row that heard nothing in time, while the link looked fine, before the stream is no longer
    # trusted: a subscription that delivers nothing would otherwise cost every order the whole wait. Any event
    # heard restores trust; the stream also subscribes afresh.
    max_misses: int = 3


class AccountStream:
    """A private order stream kept open in a thread, with the orders it has heard and a way to wait on one."""

    def __init__(self, dialect: AccountDialect, clock: Clock, timings: StreamTimings | None = None) -> None:
        self.dialect = dialect
        self.venue = dialect.venue
        self._clock = clock
        self._t = timings or StreamTimings()
        self._book = OrderBook()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._ws: ClientConnection | None = None
        self._connected = False
        self._subscribed = False
        self._alive_at = 0.0
        self._epoch = 0
        self._misses = 0
        self._thread = threading.Thread(target=self._run, name=f"account-{dialect.venue}", daemon=True)
        # Called on the stream's thread with each order as now known and when its event arrived
        # (time.monotonic_ns): how a resting maker order's fills reach its hedger at once.
        self._listeners: list[Callable[[OrderView, int], None]] = []
        self.connections = 0
        self.errors = 0
        self.events = 0

    # ---- lifecycle --------------------------------------------------------------------------------------

    def start(self) -> AccountStream:
        """Start the stream's thread."""
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop the thread and close the socket (a pending receive returns at once); waiters give up."""
        self._stop.set()
        with self._cond:
            ws = self._ws
            self._cond.notify_all()
        if ws is not None:
            ws.close()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    # ---- what callers ask -------------------------------------------------------------------------------

    @property
    def epoch(self) -> int:
        """Which subscription is live (0: none yet); a new one after every reconnect."""
        with self._cond:
            return self._epoch

    def healthy(self) -> bool:
        """Connected, subscribed, heard from within `quiet_after_s`, and not `max_misses` waits in a row in vain."""
        with self._cond:
            return self._trusted()

    def _trusted(self) -> bool:
        quiet = self._clock.monotonic() - self._alive_at
        return (
            self._connected
            and self._subscribed
            and not self._stop.is_set()
            and quiet <= self._t.quiet_after_s
            and self._misses < self._t.max_misses
        )

    def add_listener(self, listener: Callable[[OrderView, int], None]) -> None:
        """Call `listener(order, arrival_ns)` for every order event from now on (on the stream's thread: keep it
        short and never block in it)."""
        with self._cond:
            self._listeners = [*self._listeners, listener]

    def remove_listener(self, listener: Callable[[OrderView, int], None]) -> None:
        """Stop calling `listener` (a listener never added is ignored)."""
        with self._cond:
            self._listeners = [fn for fn in self._listeners if fn is not listener]

    def order(self, venue_order_id: str) -> OrderView | None:
        """What has been heard of one order (None: nothing)."""
        with self._cond:
            return self._book.view(venue_order_id)

    def wait_for(
        self, venue_order_id: str, until: Callable[[OrderView], bool], timeout_s: float, epoch: int
    ) -> OrderView | None:
        """The order once `until(order)` holds; None after `timeout_s`, or at once when the stream is not
        trusted or is no longer in subscription `epoch` (events may have been missed)."""
        deadline = self._clock.monotonic() + timeout_s
        with self._cond:
            while True:
                if self._epoch != epoch or not self._trusted():
                    return None
                view = self._book.view(venue_order_id)
                if view is not None and until(view):
                    self._misses = 0
                    return view
                remaining = deadline - self._clock.monotonic()
                if remaining <= 0:
                    self._misses += 1
                    return None
                # Woken by every event and every change of the link; the tick re-checks quietness.
                self._cond.wait(min(remaining, self._t.recv_tick_s))

    # ---- the thread -------------------------------------------------------------------------------------

    def _run(self) -> None:
        run_reconnecting(
            f"{self.venue} account stream",
            self._stop,
            self._clock,
            self._session,
            self._ended,
            min_s=self._t.reconnect_min_s,
            max_s=self._t.reconnect_max_s,
            healthy_after_s=self._t.healthy_after_s,
        )

    def _ended(self) -> None:
        with self._cond:
            self._ws = None
            self._connected = self._subscribed = False
            self._cond.notify_all()

    def _session(self) -> None:
        with connect(
            self.dialect.url,
            additional_headers=self.dialect.headers(),
            open_timeout=10,
            ping_interval=None,  # we ping ourselves, to know when the venue last answered
            close_timeout=2,
            max_size=1 << 20,
        ) as ws:
            with self._cond:
                if self._stop.is_set():
                    return
                self._ws = ws
                self._connected = True
                self._alive_at = self._clock.monotonic()
                self._misses = 0  # else a venue that acknowledges late is dropped again before it can
            self.connections += 1
            for frame in self.dialect.opening():
                ws.send(frame)
            if not self.dialect.acknowledges:
                self._mark_subscribed()
            log.info("%s account stream connected to %s", self.venue, self.dialect.url)
            self._receive(ws)

    def _mark_subscribed(self) -> None:
        with self._cond:
            self._subscribed = True
            self._epoch += 1
            self._misses = 0  # a new subscription earns trust afresh
            self._alive_at = self._clock.monotonic()
            self._cond.notify_all()

    def _receive(self, ws: ClientConnection) -> None:
        next_keepalive = self._clock.monotonic() + self._t.keepalive_s
        pong: threading.Event | None = None
        while not self._stop.is_set():
            now = self._clock.monotonic()
            if pong is not None and pong.is_set():
                pong = None
                self._heard()
            if now >= next_keepalive:
                next_keepalive = now + self._t.keepalive_s
                if pong is None:
                    pong = ws.ping()
                for frame in self.dialect.keepalive():
                    ws.send(frame)
            if now - self._alive_at > self._t.quiet_after_s:
                raise StreamRefusedError(self.venue, f"account stream silent for {now - self._alive_at:.1f} s")
            if self._misses >= self._t.max_misses:
                # Pongs but no events: the subscription may be gone behind a live socket (a dropped listen key),
                # and no event would ever come to restore trust. Subscribe afresh.
                raise StreamRefusedError(self.venue, f"{self._misses} waits in a row heard nothing")
            try:
                raw = ws.recv(timeout=self._t.recv_tick_s)
            except TimeoutError:
                continue
            self._handle(raw)

    def _heard(self) -> None:
        with self._cond:
            self._alive_at = self._clock.monotonic()

    def _handle(self, raw: str | bytes) -> None:
        try:
            reading = self.dialect.read(raw)
        except VenueError as exc:
            self.errors += 1
            log.warning("%s account stream: %s", self.venue, exc)
            self._heard()
            return
        if reading.refused is not None:
            raise StreamRefusedError(self.venue, reading.refused)
        if reading.subscribed:
            self._mark_subscribed()
        arrived_ns = time.monotonic_ns()
        with self._cond:
            self._alive_at = self._clock.monotonic()
            views = [self._book.apply(event) for event in reading.events]
            self.events += len(views)
            listeners = self._listeners
            if reading.events:
                self._misses = 0
            self._cond.notify_all()
        for view in views:
            for listener in listeners:
                try:
                    listener(view, arrived_ns)
                except Exception:  # a listener's bug must not end the stream every order's outcome relies on
                    log.exception("%s account stream: a listener failed", self.venue)
