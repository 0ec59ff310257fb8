"""Which events become alerts, and when: level threshold, deduplication and a rate limit. Pure."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from core.domain import EventLevel

_RANK = {EventLevel.INFO: 0, EventLevel.WARNING: 1, EventLevel.CRITICAL: 2}


@dataclass(frozen=True, slots=True)
class Alert:
    """One event as sinks send it."""

    ts: datetime
    level: EventLevel
    kind: str
    message: str
    pair_id: int | None = None
    data: dict[str, Any] = field(default_factory=dict)
    suppressed: int = 0  # similar alerts held back since the last one that was sent

    @property
    def text(self) -> str:
        """A one-line human text (Telegram, Discord)."""
        pair = f" [pair {self.pair_id}]" if self.pair_id is not None else ""
        extra = f" (+{self.suppressed} similar suppressed)" if self.suppressed else ""
        return f"perp-farmer {self.level.value.upper()} {self.kind}{pair}: {self.message}{extra}"


class AlertPolicy:
    """Sends an alert at or above `min_level`, not again for the same (kind, pair) within `dedup_s`, and at
    most `per_minute` in any minute; what is held back is counted on the next alert that goes out."""

    def __init__(self, min_level: EventLevel, dedup_s: float, per_minute: int) -> None:
        self.min_level = min_level
        self.dedup = timedelta(seconds=dedup_s)
        self.per_minute = per_minute
        self._last: dict[tuple[str, int | None], tuple[datetime, EventLevel]] = {}
        self._sent: deque[datetime] = deque()
        self._held = 0

    def decide(self, alert: Alert) -> Alert | None:
        """The alert to send now (with the count of what was suppressed), or None."""
        if _RANK[alert.level] < _RANK[self.min_level]:
            return None
        key = (alert.kind, alert.pair_id)
        last = self._last.get(key)
        # Within the window the same alert is held back, unless it got worse (a warning became critical).
        if last is not None and alert.ts - last[0] < self.dedup and _RANK[alert.level] <= _RANK[last[1]]:
            self._held += 1
            return None
        while self._sent and alert.ts - self._sent[0] >= timedelta(minutes=1):
            self._sent.popleft()
        if len(self._sent) >= self.per_minute:
            self._held += 1
            return None
        self._last[key] = (alert.ts, alert.level)
        self._sent.append(alert.ts)
        held, self._held = self._held, 0
        return Alert(alert.ts, alert.level, alert.kind, alert.message, alert.pair_id, alert.data, held)
