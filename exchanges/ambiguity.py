"""What a client does with a place whose reply was lost: wait until the venue can no longer accept it, then
look it up by client id. Never a blind re-send (design §3a)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

from core.clock import Clock
from core.ids import predates_our_order
from exchanges.base import OrderRequest, OrderResult
from exchanges.errors import OrderNotFound, OrderOutcomeUnknown, VenueError, VenueUnavailable

log = logging.getLogger(__name__)


def resolve_lost_reply(
    venue: str,
    request: OrderRequest,
    cause: VenueError,
    wait_s: float,
    clock: Clock,
    lookup: Callable[[str, str], OrderResult],
    venue_offset_ms: int = 0,
) -> OrderResult:
    """After `wait_s` (until the request has expired on the venue) the lookup is final: the order as found,
    VenueUnavailable "was not placed" (known dead: a retry may use a new attempt number; also when the order
    found was created before our row, `request.created_at`: another database's), or OrderOutcomeUnknown when
    even the lookup failed. `venue_offset_ms` (venue clock minus ours) puts the venue's creation time on our
    clock before it is compared with our row's."""
    if wait_s > 0:
        clock.sleep(wait_s + 0.05)
    try:
        found = lookup(request.symbol, request.client_id)
    except OrderNotFound:
        raise VenueUnavailable(
            venue, f"order {request.client_id} was not placed ({cause.venue_message})", code=cause.code
        ) from cause
    except VenueError as exc:
        raise OrderOutcomeUnknown(
            venue,
            f"order {request.client_id}: outcome unknown ({cause.venue_message}; lookup: {exc})",
            client_id=request.client_id,
        ) from exc
    venue_created = found.created_at
    if venue_created is not None:
        venue_created -= timedelta(milliseconds=venue_offset_ms)
    if predates_our_order(venue_created, request.created_at):
        # Ours would have been created after its row; an older order under our id is another database's,
        # and past the wait ours can no longer land: never book that one's fills as ours.
        raise VenueUnavailable(
            venue,
            f"order {request.client_id} was not placed ({cause.venue_message}); the order found under that id "
            f"was created at {found.created_at}, before ours ({request.created_at}): not ours",
            code=cause.code,
        ) from cause
    log.warning(
        "%s order %s: reply lost (%s), found by lookup: %s",
        venue,
        request.client_id,
        cause,
        found.status,
        extra={"venue": venue},
    )
    return found
