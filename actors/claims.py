"""Claims: which actor is working on which pair right now."""

from __future__ import annotations

import threading


class Claims:
    """Pairs an actor is working on right now, so two actors never trade the same pair at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owners: dict[int, str] = {}

    def claim(self, pair_id: int, owner: str) -> bool:
        """Take the pair for `owner`; False when someone else holds it."""
        with self._lock:
            if self._owners.get(pair_id, owner) != owner:
                return False
            self._owners[pair_id] = owner
            return True

    def release(self, pair_id: int) -> None:
        """Give the pair back."""
        with self._lock:
            self._owners.pop(pair_id, None)

    def release_owner(self, owner: str) -> None:
        """Drop every claim of `owner` (its actor died)."""
        with self._lock:
            for pair_id in [p for p, o in self._owners.items() if o == owner]:
                del self._owners[pair_id]

    def claimed(self) -> set[int]:
        """Pairs held by anyone."""
        with self._lock:
            return set(self._owners)
