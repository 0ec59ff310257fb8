"""Desk: what the trading actors share, fully built before any of them starts.

The rest of what used to live here has a module of its own: the gate (actors/gate.py), claims
(actors/claims.py), limits and ledger figures (actors/limitbook.py), kept values (actors/kept.py) and the order
handling of legs (actors/trader.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pykka

from actors.base import Directory
from actors.claims import Claims
from actors.messages import RecordEvent
from actors.timing import Timings
from core.activity import Activity
from core.clock import Clock
from core.config import Settings
from core.domain import EventLevel, Venue
from storage.queries import Queries

WRITE_TIMEOUT_S = 30.0
READ_TIMEOUT_S = 30.0


def exchange_name(venue: Venue) -> str:
    """The directory name of a venue's ExchangeActor."""
    return f"exchange.{venue.value}"


@dataclass(frozen=True)
class Desk:
    """Shared collaborators of the trading actors (thread-safe): peers by name, reads, the clock, the settings,
    claims on pairs, and the orders' and opens' timings (order metrics through them)."""

    directory: Directory
    repo: Queries
    clock: Clock
    settings: Settings
    claims: Claims
    timings: Timings
    # What a driver of fake time must wait for (core/activity.py), and the alarm that ends maker phases early.
    activity: Activity = field(default_factory=Activity)

    def write(self, message: Any) -> Any:
        """Ask the writer; returns (Written, or the message's own reply) once committed."""
        return self.directory.get("writer").ask(message, timeout=WRITE_TIMEOUT_S)

    def event(self, level: EventLevel, kind: str, message: str, pair_id: int | None = None, **data: Any) -> None:
        """Store (and log) an event."""
        self.write(RecordEvent(level, kind, message, pair_id, data))

    def tell(self, name: str, message: Any) -> bool:
        """Tell the actor serving `name`, without waiting; False when none does (the message is lost)."""
        try:
            self.directory.get(name).tell(message)
        except pykka.ActorDeadError:
            return False
        return True

    def ask_venue(self, venue: Venue, message: Any, timeout: float = READ_TIMEOUT_S) -> Any:
        """Ask a venue's actor and wait; venue errors propagate."""
        return self.directory.get(exchange_name(venue)).ask(message, timeout=timeout)

    def ask_venue_async(self, venue: Venue, message: Any) -> pykka.Future[Any]:
        """Ask a venue's actor without waiting."""
        return self.directory.get(exchange_name(venue)).ask(message, block=False)
