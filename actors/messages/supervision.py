"""Supervision: is an actor alive and serving."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

# ---- supervision --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ping:
    """Are you alive and serving?"""


@dataclass(frozen=True, slots=True)
class Pong:
    """Alive: who and which generation."""

    name: str
    generation: int
    started_at: datetime
