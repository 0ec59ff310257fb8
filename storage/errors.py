"""What the store answers when a row is missing or was moved by someone else first."""

from __future__ import annotations

from core.domain import PairState


class NotFoundError(LookupError):
    """No row with that key."""


class TransitionRefusedError(Exception):
    """The pair was not in the state the caller expected (someone else moved it first)."""

    def __init__(self, pair_id: int, expected: PairState, actual: PairState | None) -> None:
        super().__init__(f"pair {pair_id}: expected state {expected}, found {actual}")
        self.pair_id = pair_id
        self.expected = expected
        self.actual = actual
