"""Writing a test database through the PersistenceWriter's own code, without starting its actor."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from actors.writer import PersistenceWriter
from core.clock import Clock


def write(db: Engine, clock: Clock, message: Any) -> Any:
    """Apply one write message as the writer does (its transaction, its reply), on the calling thread."""
    return PersistenceWriter("writer", 0, clock, None, db=db).handle(message)
