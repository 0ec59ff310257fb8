"""Kept: a small JSON object under one meta key, so that a restart finds it again (a pause, a tripped limit)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from actors.messages import SetMeta
from storage.queries import Queries


@dataclass(frozen=True, slots=True)
class Kept:
    """A small JSON object kept under one meta key so that a restart finds it again (a pause, a tripped limit)."""

    key: str

    def load(self, repo: Queries) -> dict[str, Any] | None:
        """The kept object, or None."""
        raw = repo.get_meta(self.key)
        return None if raw is None else dict(json.loads(raw))

    def store(self, value: dict[str, Any] | None) -> SetMeta:
        """The write that keeps `value` (None: forgets it)."""
        return SetMeta(self.key, None if value is None else json.dumps(value))
