"""What every venue simulator shares: REST and websocket servers, a publisher thread, start and stop."""

from __future__ import annotations

import threading
from typing import Any, Self

from exchanges.sim.http import SimHttpServer
from exchanges.sim.price import PriceSource
from exchanges.sim.ws import SimWsServer


class SimVenue:
    """Lifecycle of a simulated venue; a subclass builds `http`, `ws` and `prices` and implements
    `publish_once` (push what changed since `_last_sent`)."""

    http: SimHttpServer
    ws: SimWsServer
    prices: PriceSource

    def _init_publisher(self, name: str, interval_s: float) -> None:
        self._publish_interval_s = interval_s
        self._publish_lock = threading.Lock()
        self._last_sent: dict[str, tuple[Any, ...]] = {}
        self._stop = threading.Event()
        self._publisher = threading.Thread(target=self._publish_loop, name=f"{name}-sim-publisher", daemon=True)

    def start(self) -> Self:
        """Serve REST, websocket and the publisher in background threads."""
        self.http.start()
        self.ws.start()
        self._publisher.start()
        return self

    def stop(self) -> None:
        """Stop everything."""
        self._stop.set()
        self.http.stop()
        self.ws.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def freeze(self, asset: str, frozen: bool = True) -> None:
        """Freeze an asset's price; once this returns, no further frame for it leaves (a quiet feed)."""
        with self._publish_lock:
            self.prices.freeze(asset, frozen)

    def publish_once(self) -> int:
        """Push every stream whose values changed; returns frames sent."""
        raise NotImplementedError

    def resend_all(self) -> None:
        """Forget what was sent, so the next publish sends every stream again (new subscribers)."""
        self._last_sent.clear()

    def _publish_loop(self) -> None:
        seen = 0
        while not self._stop.wait(self._publish_interval_s):
            if self.ws.subscriptions_made != seen:  # a new subscriber gets every stream at once
                seen = self.ws.subscriptions_made
                self.resend_all()
            self.publish_once()
