"""Domain vocabulary: venues, sides, order purposes, and the pair state machine as a table."""

from __future__ import annotations

import re
import threading
from enum import StrEnum
from typing import Any, ClassVar

from pydantic import GetCoreSchemaHandler
from pydantic_core import core_schema

_VENUE_NAME = re.compile(r"[a-z][a-z0-9_]{0,15}")  # a config key, a metric label, fits the String(16) columns


class Venue(str):
    """A perpetual-futures exchange the farmer trades on, by name. Open: any registered venue is one (see
    exchanges/registry.py); each name has exactly one object, so `venue is Venue.BACKPACK` holds."""

    __slots__ = ()
    _interned: ClassVar[dict[str, Venue]] = {}
    _lock: ClassVar[threading.Lock] = threading.Lock()
    BACKPACK: ClassVar[Venue]
    HIBACHI: ClassVar[Venue]

    def __new__(cls, name: str) -> Venue:
        """The one Venue called `name`; ValueError for a name that cannot be one."""
        if isinstance(name, Venue):
            return name
        found = cls._interned.get(name)
        if found is not None:
            return found
        if not isinstance(name, str) or not _VENUE_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a venue name (a-z, 0-9 and _, at most 16, starting with a letter)")
        with cls._lock:
            return cls._interned.setdefault(name, super().__new__(cls, name))

    @property
    def value(self) -> str:
        """The venue's name as a plain string (what the database and the wire carry)."""
        return str.__str__(self)

    def __str__(self) -> str:
        return str.__str__(self)

    def __format__(self, spec: str) -> str:
        return format(str.__str__(self), spec)

    def __repr__(self) -> str:
        return f"Venue({self.value!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Venue, (self.value,))

    def __copy__(self) -> Venue:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Venue:
        return self

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        """Validated from its name (a string) and serialized back to it."""
        return core_schema.no_info_after_validator_function(
            cls, core_schema.str_schema(), serialization=core_schema.plain_serializer_function_ser_schema(str)
        )


# The venues the project ships with; configuration names the ones a run trades on (trading.venues).
Venue.BACKPACK = Venue("backpack")
Venue.HIBACHI = Venue("hibachi")


class Side(StrEnum):
    """Direction of a leg."""

    LONG = "long"
    SHORT = "short"

    @property
    def opposite(self) -> Side:
        """The side that hedges this one (and the side that closes it)."""
        return Side.SHORT if self is Side.LONG else Side.LONG

    @property
    def sign(self) -> int:
        """+1 for long, -1 for short: PnL is sign * (mark - entry) * quantity."""
        return 1 if self is Side.LONG else -1


class OrderPurpose(StrEnum):
    """Why an order was sent; part of its client id so a venue lookup tells them apart."""

    OPEN = "open"
    CLOSE = "close"
    ROLLBACK = "rollback"
    REPAIR = "repair"


class EventLevel(StrEnum):
    """Severity of an event row (and of the alert it may raise)."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class PairState(StrEnum):
    """Lifecycle of a hedged pair (design §3). Persisted; every move is also an event row."""

    PLANNED = "planned"
    OPENING = "opening"
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"
    ROLLING_BACK = "rolling_back"
    FAILED = "failed"
    NAKED = "naked"

    @property
    def is_terminal(self) -> bool:
        """Closed and failed pairs hold nothing on any venue and never move again."""
        return self in TERMINAL_STATES

    @property
    def is_naked(self) -> bool:
        """A state in which one leg may be open without its hedge."""
        return self is PairState.NAKED


# The one table every transition is checked against (design §3). Differences from the drawing, on purpose:
# - ROLLING_BACK -> NAKED: a rollback that fails leaves one leg open without its hedge (issue 5's
#   "rollback failing -> NAKED"); the drawing routes NAKED from OPENING only.
# - OPEN -> NAKED: one leg liquidated or closed by the venue (design §3a: "liquidation of one leg turns the
#   pair naked").
# - CLOSING -> NAKED, not CLOSING -> FAILED: a close that cannot finish leaves one leg open, which is the
#   naked state (alert, block opens, repair); FAILED means "flat on both venues" and so cannot follow it.
TRANSITIONS: dict[PairState, frozenset[PairState]] = {
    PairState.PLANNED: frozenset({PairState.OPENING}),
    PairState.OPENING: frozenset({PairState.OPEN, PairState.ROLLING_BACK, PairState.NAKED}),
    PairState.ROLLING_BACK: frozenset({PairState.FAILED, PairState.NAKED}),
    PairState.OPEN: frozenset({PairState.CLOSING, PairState.NAKED}),
    PairState.CLOSING: frozenset({PairState.CLOSED, PairState.NAKED}),
    PairState.NAKED: frozenset({PairState.CLOSED}),
    PairState.CLOSED: frozenset(),
    PairState.FAILED: frozenset(),
}

TERMINAL_STATES = frozenset({PairState.CLOSED, PairState.FAILED})
ACTIVE_STATES = frozenset(set(PairState) - TERMINAL_STATES)


class IllegalTransitionError(Exception):
    """A pair was asked to move between two states the table does not connect."""

    def __init__(self, current: PairState, target: PairState) -> None:
        allowed = ", ".join(sorted(TRANSITIONS[current])) or "nothing (terminal)"
        super().__init__(f"illegal pair transition {current} -> {target} (from {current}: {allowed})")
        self.current = current
        self.target = target


def can_transition(current: PairState, target: PairState) -> bool:
    """True when the state table allows current -> target."""
    return target in TRANSITIONS[current]


def check_transition(current: PairState, target: PairState) -> PairState:
    """Return `target` when current -> target is legal; raise IllegalTransitionError otherwise."""
    if not can_transition(current, target):
        raise IllegalTransitionError(current, target)
    return target
