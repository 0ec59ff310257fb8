"""PersistenceWriter: the only actor that writes to the database; one transaction per message.

Every other actor reads through the repository directly (SQLite WAL: readers never wait for the writer).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from actors.base import DeathCallback, SupervisedActor
from actors.health import HEARTBEAT_KEY
from actors.messages import (
    BeginOpen,
    CreatePair,
    Heartbeat,
    OpenBegun,
    RecordEvent,
    RecordFills,
    RecordOrder,
    RecordSnapshot,
    SetMeta,
    TransitionPair,
    UpdateOrder,
    UpdatePair,
    UpdatePosition,
    WriteBatch,
    Written,
)
from alerts.policy import Alert
from core.clock import Clock
from core.domain import EventLevel
from storage.checks import probe_write
from storage.failure import is_storage_failure
from storage.repository import Repository

log = logging.getLogger("events")

_LOG_LEVEL = {EventLevel.INFO: logging.INFO, EventLevel.WARNING: logging.WARNING, EventLevel.CRITICAL: logging.CRITICAL}


class PersistenceWriter(SupervisedActor):
    """Applies write messages to the repository and answers Written once committed."""

    def __init__(
        self,
        name: str,
        generation: int,
        clock: Clock,
        on_death: DeathCallback | None,
        *,
        repo: Repository,
        notify: Callable[[Alert], None] | None = None,
        on_storage_failure: Callable[[BaseException], None] | None = None,
    ) -> None:
        super().__init__(name, generation, clock, on_death)
        self.repo = repo
        self._notify = notify
        self._on_storage_failure = on_storage_failure

    def _alert(self, level: EventLevel, kind: str, message: str, pair_id: int | None, data: dict[str, Any]) -> None:
        """Hand a committed warning or critical event to the alert sinks (never blocks, never raises)."""
        if self._notify is not None and level is not EventLevel.INFO:
            try:
                self._notify(Alert(self.clock.now(), level, kind, message, pair_id, data))
            except Exception:  # an alert must never cost the write that caused it
                log.exception("alert not queued")

    def handle(self, message: Any) -> Any:
        """Dispatch one write; a failing store is reported to the runtime before the error goes back."""
        try:
            return self._handle(message)
        except Exception as exc:
            if self._on_storage_failure is not None and is_storage_failure(exc):
                self._on_storage_failure(exc)
            raise

    def _handle(self, message: Any) -> Any:
        match message:
            case BeginOpen(plan=plan, leverage_set=leverage_set):
                pair, legs, orders = self.repo.begin_open(plan, dict(leverage_set))
                log.info("pair %d: planned -> opening: sending both legs", pair.id, extra={"pair": pair.id})
                return OpenBegun(pair.id, tuple(legs), tuple(orders))
            case WriteBatch(items=items):
                effects: list[Callable[[], None]] = []
                with self.repo.batch():
                    written = tuple(self._apply(item, effects) for item in items)
                for effect in effects:  # logs and alerts only for what committed
                    effect()
                return written
        now: list[Callable[[], None]] = []
        result = self._apply(message, now)
        for effect in now:
            effect()
        return result

    def _apply(self, message: Any, effects: list[Callable[[], None]]) -> Any:
        """Apply one write; its log lines and alerts are appended to `effects`, to run once committed."""
        r = self.repo
        match message:
            case CreatePair(plan=plan):
                return Written(r.create_pair(plan).id)
            case TransitionPair():
                m = message
                event_id = r.transition_pair(m.pair_id, m.expected, m.to, m.reason, m.changes, m.level, m.data)
                effects.append(lambda m=m: self._transitioned(m))
                return Written(event_id)
            case UpdatePair(pair_id=pair_id, changes=changes):
                r.update_pair(pair_id, **changes)
                return Written(pair_id)
            case UpdatePosition(position_id=position_id, changes=changes):
                r.update_position(position_id, **changes)
                return Written(position_id)
            case RecordOrder(order=order):
                return Written(r.record_order(order).id)
            case UpdateOrder():
                m = message
                order_id = r.mark_order(
                    m.venue,
                    m.client_id,
                    m.status,
                    venue_order_id=m.venue_order_id,
                    filled_quantity=m.filled_quantity,
                    avg_price=m.avg_price,
                    fee=m.fee,
                    error=m.error,
                )
                return Written(order_id)
            case Heartbeat(ts=ts):
                r.set_meta(HEARTBEAT_KEY, ts.isoformat())
                probe_write(r.engine)  # room for the next rows too, not only for an update in place
                return Written(None)
            case SetMeta(key=key, value=value):
                r.set_meta(key, value)
                return Written(None)
            case RecordFills(fills=fills):
                return Written(r.record_fills(fills))
            case RecordEvent():
                m = message
                event_id = r.add_event(m.level, m.kind, m.message, m.pair_id, m.data)
                effects.append(lambda m=m: self._evented(m))
                return Written(event_id)
            case RecordSnapshot():
                m = message
                return Written(
                    r.add_snapshot(
                        m.pair_id,
                        long_mark=m.long_mark,
                        short_mark=m.short_mark,
                        long_upnl=m.long_upnl,
                        short_upnl=m.short_upnl,
                        long_collateral_ratio=m.long_collateral_ratio,
                        short_collateral_ratio=m.short_collateral_ratio,
                        divergence=m.divergence,
                    )
                )
        return super().handle(message)

    def _transitioned(self, m: TransitionPair) -> None:
        text = f"pair {m.pair_id}: {m.expected} -> {m.to}: {m.reason}"
        log.log(_LOG_LEVEL[m.level], "%s", text, extra={"pair": m.pair_id})
        self._alert(m.level, f"pair_{m.to.value}", text, m.pair_id, m.data)

    def _evented(self, m: RecordEvent) -> None:
        log.log(
            _LOG_LEVEL[m.level],
            "%s: %s",
            m.kind,
            m.message,
            extra={"pair": m.pair_id, "venue": m.data.get("venue"), "fields": m.data},
        )
        self._alert(m.level, m.kind, m.message, m.pair_id, m.data)
