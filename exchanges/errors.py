"""Typed venue errors. Each keeps the venue's own code and message; the class says what a caller may do.

Only OrderOutcomeUnknown and its cause matter for safety: a place that timed out or got an unreadable
reply is *in flight*, not failed, until a lookup by client id says otherwise (design §3a).
"""

from __future__ import annotations


class VenueError(Exception):
    """Base of every error a venue client raises."""

    def __init__(
        self, venue: str, message: str, *, code: str | int | None = None, http_status: int | None = None
    ) -> None:
        super().__init__(f"{venue}: {message}" + (f" ({code})" if code is not None else ""))
        self.venue = venue
        self.code = code
        self.venue_message = message
        self.http_status = http_status


class AuthError(VenueError):
    """Bad key, bad signature, or a timestamp outside the venue's window: fix configuration or clock."""


class RateLimited(VenueError):
    """The venue asked us to slow down; `retry_after` seconds if it said."""

    def __init__(
        self,
        venue: str,
        message: str,
        *,
        retry_after: float | None = None,
        code: str | int | None = None,
        http_status: int | None = None,
    ) -> None:
        super().__init__(venue, message, code=code, http_status=http_status)
        self.retry_after = retry_after


class InsufficientMargin(VenueError):
    """Not enough collateral for the order: a definitive rejection, do not retry blindly."""


class InvalidOrder(VenueError):
    """The venue rejected the order's contents (size, price, flags): a definitive rejection."""


class OrderNotFound(VenueError):
    """The venue knows no order with that id."""


class VenueUnavailable(VenueError):
    """Timeout, connection failure, 5xx or maintenance: try again later (safe calls only)."""


class MalformedResponse(VenueUnavailable):
    """The venue answered something we cannot parse; never trade on it."""


class OrderOutcomeUnknown(VenueUnavailable):
    """A place may have reached the venue but we could not learn its outcome; look it up by client id."""

    def __init__(
        self, venue: str, message: str, *, client_id: str, code: str | int | None = None, http_status: int | None = None
    ) -> None:
        super().__init__(venue, message, code=code, http_status=http_status)
        self.client_id = client_id


REJECTIONS = (InsufficientMargin, InvalidOrder)
