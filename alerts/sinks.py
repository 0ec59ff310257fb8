"""Alert sinks: each turns an Alert into one HTTP request. Failures raise; the dispatcher logs them.

Webhook URLs and the Telegram bot token carry credentials: sinks keep them as SecretStr and read the value only
to build the request that sends an alert, so no repr, status or log of a sink can show them.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Sequence
from typing import Any, Protocol

import requests
from pydantic import SecretStr

from alerts.policy import Alert, AlertPolicy
from storage.records import jsonable

log = logging.getLogger(__name__)
TIMEOUT_S = 10.0
DISCORD_LIMIT = 2000
TELEGRAM_LIMIT = 4096


class Sink(Protocol):
    """Where alerts go."""

    name: str

    def request(self, alert: Alert) -> tuple[str, dict[str, Any]]:
        """(url, JSON body) of the request that delivers `alert`."""
        ...


class WebhookSink:
    """A generic JSON webhook: the whole alert as one object."""

    name = "webhook"

    def __init__(self, url: SecretStr) -> None:
        self.url = url

    def request(self, alert: Alert) -> tuple[str, dict[str, Any]]:
        """POST url {ts, level, kind, message, pair_id, data, suppressed}."""
        return self.url.get_secret_value(), jsonable(
            {
                "source": "perp-farmer",
                "ts": alert.ts,
                "level": alert.level,
                "kind": alert.kind,
                "message": alert.message,
                "pair_id": alert.pair_id,
                "data": alert.data,
                "suppressed": alert.suppressed,
            }
        )


class TelegramSink:
    """Telegram Bot API sendMessage to one chat."""

    name = "telegram"

    def __init__(self, bot_token: SecretStr, chat_id: str, api_url: str = "https://api.telegram.org") -> None:
        self.bot_token = bot_token
        self.chat_id = chat_id
        self.api_url = api_url.rstrip("/")

    def request(self, alert: Alert) -> tuple[str, dict[str, Any]]:
        """POST /bot<token>/sendMessage {chat_id, text, disable_web_page_preview}."""
        return f"{self.api_url}/bot{self.bot_token.get_secret_value()}/sendMessage", {
            "chat_id": self.chat_id,
            "text": alert.text[:TELEGRAM_LIMIT],
            "disable_web_page_preview": True,
        }


class DiscordSink:
    """A Discord channel webhook."""

    name = "discord"

    def __init__(self, webhook_url: SecretStr) -> None:
        self.url = webhook_url

    def request(self, alert: Alert) -> tuple[str, dict[str, Any]]:
        """POST webhook {content, allowed_mentions: none}."""
        return self.url.get_secret_value(), {"content": alert.text[:DISCORD_LIMIT], "allowed_mentions": {"parse": []}}


class AlertDispatcher:
    """Applies the policy and delivers alerts from a background thread, so a slow sink never blocks the
    writer that records events."""

    def __init__(self, sinks: Sequence[Sink], policy: AlertPolicy) -> None:
        self.sinks = list(sinks)
        self.policy = policy
        self._queue: queue.Queue[Alert | None] = queue.Queue(maxsize=1000)
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="alerts", daemon=True)
        self._lock = threading.Lock()
        self.delivered = 0
        self.failed = 0

    def start(self) -> AlertDispatcher:
        """Start delivering."""
        self._thread.start()
        return self

    def submit(self, alert: Alert) -> None:
        """Queue an event; the policy decides whether it goes out."""
        with self._lock:
            decided = self.policy.decide(alert)
        if decided is not None and self.sinks:
            try:
                self._queue.put_nowait(decided)
            except queue.Full:
                log.error("alert queue full: dropped %s", alert.kind)  # noqa: TRY400

    def stop(self, timeout_s: float = 5.0) -> None:
        """Deliver what is queued (bounded), then stop."""
        self._queue.put(None)
        self._thread.join(timeout_s)
        self._session.close()

    def _run(self) -> None:
        while (alert := self._queue.get()) is not None:
            for sink in self.sinks:
                try:
                    url, body = sink.request(alert)
                    reply = self._session.post(url, json=body, timeout=TIMEOUT_S)
                    reply.raise_for_status()
                    self.delivered += 1
                except Exception as exc:  # noqa: BLE001 - one bad sink or alert must not end delivery for all
                    self.failed += 1
                    # The exception text may carry the URL, and a Telegram URL carries the bot token.
                    log.warning("alert to %s failed: %s", sink.name, type(exc).__name__)


def dispatcher_from(settings: Any) -> AlertDispatcher | None:
    """The dispatcher for the configured sinks, or None when none is configured."""
    a = settings.alerts
    sinks: list[Sink] = []
    if a.webhook_url is not None:
        sinks.append(WebhookSink(a.webhook_url))
    if a.telegram_bot_token is not None and a.telegram_chat_id:
        sinks.append(TelegramSink(a.telegram_bot_token, a.telegram_chat_id, a.telegram_api_url))
    if a.discord_webhook_url is not None:
        sinks.append(DiscordSink(a.discord_webhook_url))
    if not sinks:
        return None
    from core.domain import EventLevel  # noqa: PLC0415

    policy = AlertPolicy(EventLevel(a.min_level), float(a.dedup_window_s), a.max_per_minute)
    return AlertDispatcher(sinks, policy)
