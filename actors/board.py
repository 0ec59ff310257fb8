"""StatusBoard: what `status` shows besides the pairs, kept current by those who know it, so that a status call
reads no database and waits for no actor: the recent alerts (from the writer, as they commit), the Monitor's
latest reading (published at the end of each tick), and the other actors' latest GetStatus replies."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any

import pykka

from actors.messages import GetStatus
from alerts.policy import Alert
from core.domain import EventLevel
from storage.records import EventRecord

RECENT_ALERTS = 10  # the alerts `status` lists, newest first
# An actor's reply older than this is asked for again, and waited for (as before the board): a status call made
# seconds after the last one shows what the actor says now. Calls closer together are served the reply to the
# previous call's ask, sent without waiting, so a busy actor (the coordinator mid-open) never holds them up.
FRESH_S = 2.0
ASK_TIMEOUT_S = 5.0


def alert_row(alert: Alert | EventRecord) -> dict[str, Any]:
    """One alert as `status` shows it."""
    return {
        "ts": alert.ts,
        "level": alert.level.value,
        "kind": alert.kind,
        "pair_id": alert.pair_id,
        "message": alert.message,
    }


class StatusBoard:
    """Alerts, published readings and actor replies for `status`; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._alerts: deque[dict[str, Any]] = deque(maxlen=RECENT_ALERTS)
        self._published: dict[str, dict[str, Any]] = {}
        self._replies: dict[str, tuple[float, dict[str, Any]]] = {}
        self._asked: dict[str, pykka.Future[Any]] = {}

    def load_alerts(self, events: list[EventRecord]) -> None:
        """Start from the stored events (newest first), as the database holds them."""
        rows = [alert_row(e) for e in events if e.level is not EventLevel.INFO][:RECENT_ALERTS]
        with self._lock:
            self._alerts = deque(rows, maxlen=RECENT_ALERTS)

    def alerted(self, alert: Alert) -> None:
        """A warning or critical event committed (the writer's hook)."""
        if alert.level is EventLevel.INFO:
            return
        with self._lock:
            self._alerts.appendleft(alert_row(alert))

    def alerts(self) -> list[dict[str, Any]]:
        """The recent alerts, newest first."""
        with self._lock:
            return list(self._alerts)

    def publish(self, name: str, data: dict[str, Any]) -> None:
        """An actor's latest status, published by the actor itself."""
        with self._lock:
            self._published[name] = data

    def published(self, name: str) -> dict[str, Any]:
        """What `name` last published ({} if nothing)."""
        with self._lock:
            return self._published.get(name, {})

    def actor_status(self, name: str, ref: pykka.ActorRef[Any] | None) -> dict[str, Any]:
        """The actor's GetStatus data, without waiting for it unless the last reply is stale (see FRESH_S) and the
        actor is not still busy with the last ask (then the last reply, with `as_of_s`): {} when it is down,
        {"unavailable": True} when it does not answer a wait."""
        if ref is None:
            return {}
        now = time.monotonic()
        with self._lock:
            asked = self._asked.pop(name, None)
            reply = self._replies.get(name)
        if asked is not None:
            try:
                reply = (now, asked.get(timeout=0).data)
            except pykka.Timeout:
                with self._lock:
                    self._asked.setdefault(name, asked)  # still busy: its answer is read by a later call
            except Exception:  # noqa: BLE001 - died or refused: asked again below, or waited for
                asked = None
            else:
                asked = None
        if reply is not None and now - reply[0] > FRESH_S and asked is not None:
            # Busy since its last answer (inside a venue call, say): that answer, dated, rather than a wait
            # that would hold up `status` and with it the fleet's heartbeat.
            return {**reply[1], "as_of_s": round(now - reply[0], 1)}
        if reply is None or now - reply[0] > FRESH_S:
            try:
                reply = (now, ref.ask(GetStatus(), block=True, timeout=ASK_TIMEOUT_S).data)
            except Exception:  # noqa: BLE001 - busy or down: the status says so
                return {"unavailable": True}
        elif asked is None:
            try:
                future = ref.ask(GetStatus(), block=False)
            except pykka.ActorDeadError:
                return {}
            with self._lock:
                self._asked.setdefault(name, future)
        with self._lock:
            self._replies[name] = reply
        return reply[1]
