"""Backpack's private order stream (spec §5): the signed `account.orderUpdate` subscription and its events
read into OrderEvents. Pure apart from the clock it signs with.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from exchanges.account_book import OrderEvent
from exchanges.account_stream import StreamReading
from exchanges.backpack import parse
from exchanges.backpack.signing import BackpackSigner, signing_string
from exchanges.base import Fill
from exchanges.wire import dec, field, from_millis, integer, json_object, non_negative, opt_dec, positive, text

VENUE = "backpack"
ORDER_STREAM = "account.orderUpdate"


def subscribe_frame(signer: BackpackSigner, timestamp_ms: int) -> str:
    """The SUBSCRIBE frame for our order updates, signed over `instruction=subscribe` (vector V5)."""
    signature = signer.sign(signing_string("subscribe", None, timestamp_ms, signer.window_ms))
    return json.dumps({
        "method": "SUBSCRIBE",
        "params": [ORDER_STREAM],
        "signature": [signer.api_key, signature, str(timestamp_ms), str(signer.window_ms)],
    }, separators=(",", ":"))  # fmt: skip


def _text_id(obj: Any, key: str) -> str:
    # Ids arrive as strings or numbers (spec §6): kept as the digits.
    return str(integer(VENUE, field(VENUE, obj, key), key))


def _fill(data: Mapping[str, Any], order_id: str, client_id: str | None) -> Fill:
    return Fill(
        venue_fill_id=_text_id(data, "t"),
        venue_order_id=order_id,
        client_id=client_id,
        symbol=text(VENUE, data, "s"),
        side=parse._side(field(VENUE, data, "S")),
        price=positive(VENUE, dec(VENUE, field(VENUE, data, "L"), "L"), "L"),
        quantity=positive(VENUE, dec(VENUE, field(VENUE, data, "l"), "l"), "l"),
        fee=dec(VENUE, field(VENUE, data, "n"), "n"),
        fee_asset=data.get("N"),
        is_maker=parse.maker_flag(data.get("m"), "m"),
        # Engine time in µs, cut to the ms the REST fill history carries: both paths record the same time.
        ts=from_millis(VENUE, integer(VENUE, field(VENUE, data, "T"), "T") // 1000, "T"),
    )


def parse_order_update(data: Any) -> OrderEvent:
    """One `account.orderUpdate` payload (any `e`): the order's state as of the event, and its fill if any."""
    status = parse.status_field(data, "X")
    order_id = _text_id(data, "i")
    client_id = None if data.get("c") is None else _text_id(data, "c")
    filled = opt_dec(VENUE, data, "z")
    fills = (_fill(data, order_id, client_id),) if data.get("e") == "orderFill" else ()
    return OrderEvent(
        venue_order_id=order_id,
        client_id=client_id,
        symbol=text(VENUE, data, "s"),
        side=parse._side(field(VENUE, data, "S")),
        status=status,
        quantity=opt_dec(VENUE, data, "q"),
        filled_quantity=None if filled is None else non_negative(VENUE, filled, "z"),
        filled_quote=opt_dec(VENUE, data, "Z"),
        fills=fills,
    )


def read_frame(raw: str | bytes) -> StreamReading:
    """A frame of the private socket: order events, nothing (other streams), or a refusal (an error frame:
    the socket carries only our signed subscription, so any error is about it)."""
    msg = json_object(VENUE, raw, "account stream frame")
    if "error" in msg:
        err = msg["error"] if isinstance(msg["error"], Mapping) else {}
        return StreamReading(refused=f"subscription refused: {str(err.get('message'))[:200]} ({err.get('code')})")
    stream = msg.get("stream")
    if not isinstance(stream, str) or not stream.startswith(ORDER_STREAM):
        return StreamReading()
    return StreamReading(events=(parse_order_update(msg.get("data")),))


class BackpackAccountDialect:
    """The AccountDialect of Backpack: no handshake headers, one signed subscribe, no acknowledgement (none is
    documented: the stream is trusted once the frame is sent), keep-alive by websocket ping alone."""

    venue = VENUE
    acknowledges = False

    def __init__(self, url: str, signer: BackpackSigner, now_ms: Callable[[], int]) -> None:
        self.url = url
        self._signer = signer
        self._now_ms = now_ms

    def headers(self) -> dict[str, str]:
        """None needed: the subscription itself is signed."""
        return {}

    def opening(self) -> list[str]:
        """The subscribe frame, signed at the venue's time as we last measured it."""
        return [subscribe_frame(self._signer, self._now_ms())]

    def keepalive(self) -> list[str]:
        """Nothing beyond the websocket ping."""
        return []

    def read(self, raw: str | bytes) -> StreamReading:
        """One frame."""
        return read_frame(raw)
