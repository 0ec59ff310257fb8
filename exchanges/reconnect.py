"""Run a websocket session again and again until stopped, backing off between attempts (public feeds and
private account streams alike)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from core.clock import Clock
from exchanges.errors import VenueError

log = logging.getLogger(__name__)

# What ends a session without ending the loop: the link, the handshake, a venue refusing the subscription.
SESSION_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionClosed,
    OSError,
    InvalidHandshake,
    InvalidURI,
    TimeoutError,
    VenueError,
)


def run_reconnecting(
    what: str,
    stop: threading.Event,
    clock: Clock,
    session: Callable[[], None],
    after: Callable[[], None],
    *,
    min_s: float,
    max_s: float,
    healthy_after_s: float,
) -> None:
    """Call `session` until `stop` is set, `after` each one, waiting min_s, 2*min_s, ... max_s in between."""
    delay = min_s
    while not stop.is_set():
        started = clock.monotonic()
        try:
            session()
        except SESSION_ERRORS as exc:
            if not stop.is_set():
                log.warning("%s disconnected: %s", what, exc or type(exc).__name__)
        except Exception:
            # A bug or a frame no reader foresaw: an ended thread would leave the feed dead for good, silently.
            log.exception("%s failed; starting over", what)
        finally:
            after()
        if stop.is_set():
            break
        # A connection that died young does not reset the backoff: a server that accepts and then drops at
        # once would otherwise be hammered (websockets' own backoff covers failed connects only).
        if clock.monotonic() - started >= healthy_after_s:
            delay = min_s
        stop.wait(delay)
        delay = min(delay * 2, max_s)
