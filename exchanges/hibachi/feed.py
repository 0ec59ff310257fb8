"""Hibachi's market websocket feed: `ask_bid_price` (best bid/ask) and `mark_price` per contract (spec §5)."""

from __future__ import annotations

import json
from typing import Any

from core.clock import Clock
from exchanges.feed import PriceFeed
from exchanges.hibachi.parse import parse_ws_message
from exchanges.quotes import QuoteBook

TOPICS = ("ask_bid_price", "mark_price")


def subscribe_frames(symbols: list[str]) -> list[str]:
    """One subscribe frame for every contract's topics; the key is `parameters`, not `params`."""
    subscriptions = [{"symbol": symbol, "topic": topic} for symbol in symbols for topic in TOPICS]
    return [json.dumps({"method": "subscribe", "parameters": {"subscriptions": subscriptions}})]


def hibachi_feed(
    url: str, symbols: list[str], clock: Clock, *, book: QuoteBook | None = None, **options: Any
) -> PriceFeed:
    """A PriceFeed for Hibachi (not started); websocket pings keep the link alive (spec §5)."""
    return PriceFeed(
        "hibachi",
        url,
        subscribe_frames(symbols),
        lambda raw: parse_ws_message(raw, clock.now()),
        book or QuoteBook(clock),
        clock,
        symbols=tuple(symbols),
        **options,
    )
