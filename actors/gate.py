"""TradingGate: whether new pairs may open. The coordinator alone writes it; anyone reads it.

Every other part that wants opening paused, resumed, blocked or unblocked sends the coordinator a message
(SetTradingMode, BlockOpening, UnblockOpening); the coordinator applies it here. The gate object itself is
shared and outlives coordinator restarts, and the operator's pause is also kept in the database (`PAUSE`), so
that a message lost while the coordinator was down is made good by the next generation (see
HedgeCoordinator.sync_gate).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping

from actors.kept import Kept
from actors.messages import BlockOpening, SetTradingMode, TradingMode, UnblockOpening

PAUSE_KEY = "trading.pause"  # the operator's pause, kept in the database so that a restart keeps it
PAUSE = Kept(PAUSE_KEY)
RESUMED = "resumed by operator"  # the gate's reason after the operator's resume

GateMessage = SetTradingMode | BlockOpening | UnblockOpening


class TradingGate:
    """The operator's mode plus automatic blocks (start-up reconciliation, a tripped limit, a venue position
    nobody accounts for). Thread-safe; written only through `apply`, by the coordinator."""

    def __init__(self, blocks: Mapping[str, str] | None = None) -> None:
        self._lock = threading.Lock()
        self._mode = TradingMode.NORMAL
        self._reason = ""
        self._kept = False
        self._blocks: dict[str, str] = dict(blocks or {})

    def apply(self, message: GateMessage) -> bool:
        """Take one change; True when it changed anything."""
        with self._lock:
            match message:
                case SetTradingMode(mode=mode, reason=reason, kept=kept):
                    changed = mode is not self._mode
                    self._mode, self._reason, self._kept = mode, reason, kept and mode is TradingMode.PAUSED
                    return changed
                case BlockOpening(key=key, reason=reason):
                    changed = self._blocks.get(key) != reason
                    self._blocks[key] = reason
                    return changed
                case UnblockOpening(key=key):
                    return self._blocks.pop(key, None) is not None
        raise TypeError(f"not a gate message: {message!r}")

    @property
    def mode(self) -> TradingMode:
        """The operator's mode (or an automatic pause: a failing actor, a failing database, a shutdown)."""
        with self._lock:
            return self._mode

    @property
    def reason(self) -> str:
        """Why the mode is what it is."""
        with self._lock:
            return self._reason

    @property
    def kept(self) -> bool:
        """True while paused by the operator's pause kept in the database (a resume found there lifts it)."""
        with self._lock:
            return self._kept

    @property
    def blocks(self) -> dict[str, str]:
        """Current automatic blocks, by key."""
        with self._lock:
            return dict(self._blocks)

    @property
    def paused(self) -> bool:
        """True when opening is paused."""
        with self._lock:
            return self._mode is TradingMode.PAUSED
