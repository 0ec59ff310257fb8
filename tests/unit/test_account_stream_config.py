"""Where each venue's private account stream is looked for, and how it is turned off."""

from __future__ import annotations

import pytest

from core.config import ConfigError, load_settings


def test_the_live_venues_streams_by_default() -> None:
    s = load_settings(None, {})
    assert s.backpack.account_stream_url() == "wss://ws.backpack.exchange"
    assert s.hibachi.account_stream_url() == "wss://api.hibachi.xyz/ws/account"


def test_the_streams_follow_the_configured_hosts() -> None:
    s = load_settings(None, {"backpack": {"ws_url": "ws://127.0.0.1:9/"}, "hibachi": {"api_url": "http://127.0.0.1:8"}})
    assert s.backpack.account_stream_url() == "ws://127.0.0.1:9/"
    assert s.hibachi.account_stream_url() == "ws://127.0.0.1:8/ws/account"


def test_an_empty_url_turns_a_stream_off_and_an_explicit_one_wins() -> None:
    s = load_settings(None, {"backpack": {"account_ws_url": ""}, "hibachi": {"account_ws_url": "ws://127.0.0.1:7/a"}})
    assert s.backpack.account_stream_url() is None
    assert s.hibachi.account_stream_url() == "ws://127.0.0.1:7/a"


@pytest.mark.parametrize("section", ["backpack", "hibachi"])
def test_a_stream_url_must_be_a_websocket(section: str) -> None:
    with pytest.raises(ConfigError, match=f"{section}.account_ws_url"):
        load_settings(None, {section: {"account_ws_url": "https://127.0.0.1/x"}})
