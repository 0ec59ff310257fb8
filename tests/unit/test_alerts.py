"""Alerts: the policy (level, dedup, rate limit) and the exact request each sink sends, to a local server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from alerts.policy import Alert, AlertPolicy
from alerts.sinks import AlertDispatcher, DiscordSink, TelegramSink, WebhookSink, dispatcher_from
from core.config import load_settings
from core.domain import EventLevel
from tests.helpers import wait_until

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def _alert(
    kind: str = "collateral_low",
    level: EventLevel = EventLevel.CRITICAL,
    at: float = 0,
    pair: int | None = 4,
    message: str = "hibachi: collateral ratio 1.20 is below 1.5",
) -> Alert:
    return Alert(T0 + timedelta(seconds=at), level, kind, message, pair, {"ratio": "1.20"})


def test_policy_drops_info_and_deduplicates_per_kind_and_pair() -> None:
    policy = AlertPolicy(EventLevel.WARNING, dedup_s=600, per_minute=10)
    assert policy.decide(_alert(level=EventLevel.INFO)) is None
    warning = _alert("pnl_divergence", EventLevel.WARNING)
    assert policy.decide(warning) is not None
    assert policy.decide(_alert("pnl_divergence", EventLevel.WARNING, at=60)) is None  # flapping: held back
    assert policy.decide(_alert("pnl_divergence", EventLevel.WARNING, at=30, pair=5)) is not None  # another pair
    escalated = policy.decide(_alert("pnl_divergence", EventLevel.CRITICAL, at=90))  # worse: goes out at once
    assert escalated is not None and escalated.suppressed == 0  # the pair-5 alert already reported the one held
    assert policy.decide(_alert("pnl_divergence", EventLevel.CRITICAL, at=120)) is None
    later = policy.decide(_alert("pnl_divergence", EventLevel.WARNING, at=700))
    assert later is not None and later.suppressed == 1


def test_policy_rate_limits_a_storm() -> None:
    policy = AlertPolicy(EventLevel.WARNING, dedup_s=0, per_minute=3)
    sent = [policy.decide(_alert(f"k{i}", at=i)) for i in range(10)]
    assert sum(a is not None for a in sent) == 3
    after = policy.decide(_alert("k99", at=70))
    assert after is not None and after.suppressed == 7


class _Capture(BaseHTTPRequestHandler):
    received: list[tuple[str, dict[str, Any]]] = []  # noqa: RUF012

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append((self.path, body))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[tuple[str, dict[str, Any]]]]]:
    _Capture.received = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Capture)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}", _Capture.received
    srv.shutdown()
    srv.server_close()


def test_each_sink_sends_its_exact_request(server: tuple[str, list[tuple[str, dict[str, Any]]]]) -> None:
    url, received = server
    sinks = [
        WebhookSink(SecretStr(f"{url}/hook")),
        TelegramSink(SecretStr("123:ABC"), "-100200", api_url=url),
        DiscordSink(SecretStr(f"{url}/api/webhooks/1/xyz")),
    ]
    dispatcher = AlertDispatcher(sinks, AlertPolicy(EventLevel.WARNING, 600, 10)).start()
    try:
        dispatcher.submit(_alert())
        dispatcher.submit(_alert())  # a duplicate: not sent again
        dispatcher.submit(_alert("engine_started", EventLevel.INFO))  # below the threshold
        wait_until(lambda: len(received) == 3, what="three deliveries")
    finally:
        dispatcher.stop()
    text = "perp-farmer CRITICAL collateral_low [pair 4]: hibachi: collateral ratio 1.20 is below 1.5"
    assert received == [
        (
            "/hook",
            {
                "source": "perp-farmer",
                "ts": "2026-05-01T00:00:00+00:00",
                "level": "critical",
                "kind": "collateral_low",
                "message": "hibachi: collateral ratio 1.20 is below 1.5",
                "pair_id": 4,
                "data": {"ratio": "1.20"},
                "suppressed": 0,
            },
        ),
        ("/bot123:ABC/sendMessage", {"chat_id": "-100200", "text": text, "disable_web_page_preview": True}),
        ("/api/webhooks/1/xyz", {"content": text, "allowed_mentions": {"parse": []}}),
    ]
    assert dispatcher.delivered == 3 and dispatcher.failed == 0


def test_a_failing_sink_is_counted_and_does_not_leak_its_url(caplog: pytest.LogCaptureFixture) -> None:
    dispatcher = AlertDispatcher(
        [TelegramSink(SecretStr("SECRET-TOKEN"), "1", api_url="http://127.0.0.1:9")],
        AlertPolicy(EventLevel.WARNING, 0, 10),
    ).start()
    try:
        dispatcher.submit(_alert())
        wait_until(lambda: dispatcher.failed == 1, what="a failed delivery")
    finally:
        dispatcher.stop()
    assert "SECRET-TOKEN" not in caplog.text


def test_sinks_from_settings_hold_their_urls_and_token_only_as_secrets(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    secrets = ("HOOK-" + "h" * 20, "TGBOT-" + "t" * 30, "DISCORD-" + "d" * 20)
    settings = load_settings(
        overrides={
            "alerts": {
                "webhook_url": f"https://hooks.example.invalid/{secrets[0]}",
                "telegram_bot_token": f"123456:{secrets[1]}",
                "telegram_chat_id": "-100200",
                "discord_webhook_url": f"https://discord.example.invalid/api/webhooks/1/{secrets[2]}",
            }
        }
    )
    dispatcher = dispatcher_from(settings)
    assert dispatcher is not None and [sink.name for sink in dispatcher.sinks] == ["webhook", "telegram", "discord"]
    # What a repr, a debugger, a status dump or a log of the objects shows: no secret.
    shown = repr(dispatcher.sinks) + "".join(f"{vars(sink)}{sink!r}{sink}" for sink in dispatcher.sinks)
    for secret in secrets:
        assert secret not in shown
    # The secret value is read only to build the request that sends the alert.
    urls = [sink.request(_alert())[0] for sink in dispatcher.sinks]
    assert urls == [
        f"https://hooks.example.invalid/{secrets[0]}",
        f"https://api.telegram.org/bot123456:{secrets[1]}/sendMessage",
        f"https://discord.example.invalid/api/webhooks/1/{secrets[2]}",
    ]


def test_a_sink_that_raises_while_building_its_request_does_not_stop_the_others(
    server: tuple[str, list[tuple[str, dict[str, Any]]]],
) -> None:
    url, received = server

    class Broken:
        name = "broken"

        def request(self, alert: Alert) -> tuple[str, dict[str, Any]]:
            raise ValueError(f"cannot render {alert.kind}")

    dispatcher = AlertDispatcher(
        [Broken(), WebhookSink(SecretStr(f"{url}/hook"))], AlertPolicy(EventLevel.WARNING, 0, 10)
    ).start()
    try:
        dispatcher.submit(_alert())
        dispatcher.submit(_alert("storage_failed"))
        wait_until(lambda: len(received) == 2, what="both alerts through the working sink")
    finally:
        dispatcher.stop()
    assert dispatcher.failed == 2 and dispatcher.delivered == 2
