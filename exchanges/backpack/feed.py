"""Backpack's public websocket feed: bookTicker (best bid/ask) and markPrice (mark, funding) per market."""

from __future__ import annotations

import json
from typing import Any

from core.clock import Clock
from exchanges.backpack.parse import parse_ws_message
from exchanges.feed import PriceFeed
from exchanges.quotes import QuoteBook


def subscribe_frames(symbols: list[str]) -> list[str]:
    """One SUBSCRIBE frame for every market's bookTicker and markPrice streams (spec §5)."""
    streams = [f"{kind}.{symbol}" for symbol in symbols for kind in ("bookTicker", "markPrice")]
    return [json.dumps({"method": "SUBSCRIBE", "params": streams})]


def backpack_feed(
    url: str, symbols: list[str], clock: Clock, *, book: QuoteBook | None = None, **options: Any
) -> PriceFeed:
    """A PriceFeed for Backpack (not started). The server pings every 60 s; our pings detect dead links."""
    return PriceFeed(
        "backpack",
        url,
        subscribe_frames(symbols),
        parse_ws_message,
        book or QuoteBook(clock),
        clock,
        symbols=tuple(symbols),
        **options,
    )
