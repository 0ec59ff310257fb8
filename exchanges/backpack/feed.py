"""Backpack's public websocket feed: bookTicker (best bid/ask) and markPrice (mark, funding) per market."""

from __future__ import annotations

import json
from collections.abc import Callable

from core.clock import Clock
from exchanges.backpack.parse import parse_ws_message
from exchanges.base import Quote
from exchanges.feed import PriceFeed
from exchanges.quotes import QuoteBook


def subscribe_frames(symbols: list[str]) -> list[str]:
    """One SUBSCRIBE frame for every market's bookTicker and markPrice streams (spec §5)."""
    streams = [f"{kind}.{symbol}" for symbol in symbols for kind in ("bookTicker", "markPrice")]
    return [json.dumps({"method": "SUBSCRIBE", "params": streams})]


def backpack_feed(
    url: str,
    symbols: list[str],
    clock: Clock,
    *,
    book: QuoteBook | None = None,
    on_quote: Callable[[Quote], None] | None = None,
    **options: float,
) -> PriceFeed:
    """A PriceFeed for Backpack (not started). The server pings every 60 s; our pings detect dead links."""
    return PriceFeed(
        "backpack",
        url,
        subscribe_frames(symbols),
        parse_ws_message,
        book or QuoteBook(clock),
        clock,
        on_quote=on_quote,
        symbols=tuple(symbols),
        **options,
    )
