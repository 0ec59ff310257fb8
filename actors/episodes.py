"""Alerts that last: an event when a condition starts and an info event when it clears, nothing while it lasts."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

from actors.desk import Desk
from core.domain import EventLevel


class Episodes:
    """The conditions under way, by key; events go to the desk (the writer)."""

    def __init__(self, desk: Desk) -> None:
        self.desk = desk
        self._active: set[Hashable] = set()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._active

    def update(
        self,
        key: Hashable,
        active: bool,
        level: EventLevel,
        kind: str,
        message: str,
        pair_id: int | None = None,
        **data: Any,
    ) -> None:
        """Record that the condition `key` holds (`active`) or not at this reading."""
        if active and key not in self._active:
            self._active.add(key)
            self.desk.event(level, kind, message, pair_id, **data)
        elif not active and key in self._active:
            self._active.discard(key)
            self.desk.event(EventLevel.INFO, f"{kind}_cleared", f"cleared: {kind} ({key})", pair_id)
