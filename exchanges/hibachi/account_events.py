"""Hibachi's account stream (spec §5): `stream.start` for a listen key, `stream.ping` to keep it, and the
order and trade events read into OrderEvents.

UNCERTAIN (spec §7 item 6): how the venue names an event's kind is not settled; `event_name` alone decides it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from itertools import count
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

from core.clock import Clock
from exchanges.account_book import OrderEvent
from exchanges.account_stream import StreamReading
from exchanges.base import Fill
from exchanges.hibachi import parse
from exchanges.wire import dec_field, field, integer, json_object, non_negative, opt_dec, positive, text

VENUE = "hibachi"
ORDER_EVENTS = {"ORDER_CREATED", "ORDER_UPDATED", "ORDER_CANCELED"}
TRADE_EVENT = "trade_update"


def account_url(base: str, account_id: int) -> str:
    """The account socket's URL with `accountId` in its query (kept if the configured URL already has it)."""
    parts = urlsplit(base)
    query = parse_qs(parts.query)
    if "accountId" in query:
        return base
    extra = urlencode({"accountId": account_id})
    return urlunsplit(parts._replace(query=f"{parts.query}&{extra}" if parts.query else extra))


def event_name(msg: Mapping[str, Any]) -> str | None:
    """The kind of a pushed event. UNCERTAIN (spec §5, §7 item 6): the official SDK keys events on `topic`, the
    Go SDK on `event`; the docs name neither. Either is accepted, `topic` first."""
    for key in ("topic", "event"):
        value = msg.get(key)
        if isinstance(value, str):
            return value
    return None


def _trade_fill(data: Mapping[str, Any], order_id: str) -> Fill:
    # UNCERTAIN (spec §5 item 6: the account events are not documented): the trade event's `id` is taken to be the
    # trade journal's id. Were they different ids, a fill heard here and read later over REST would be stored twice.
    return Fill(
        venue_fill_id=str(integer(VENUE, field(VENUE, data, "id"), "id")),
        venue_order_id=order_id,
        client_id=None,  # as the REST trade journal gives it, so both paths record the same fill
        symbol=text(VENUE, data, "symbol"),
        side=parse._side(field(VENUE, data, "side"), parse._TRADE_SIDE, "side"),
        price=positive(VENUE, dec_field(VENUE, data, "price"), "price"),
        quantity=positive(VENUE, dec_field(VENUE, data, "quantity"), "quantity"),
        fee=dec_field(VENUE, data, "fee"),
        fee_asset="USDT",
        is_maker=parse.maker_of(data),
        ts=parse._trade_time(data),
    )


def parse_trade_update(data: Any) -> OrderEvent:
    """A `trade_update`: one fill, and the order's cumulative fill and status right after it."""
    order_id = parse._order_id(field(VENUE, data, "orderId"))
    fill = _trade_fill(data, order_id)
    status_text = data.get("orderStatus")
    status = parse._STATUS.get(status_text) if isinstance(status_text, str) else None
    filled = opt_dec(VENUE, data, "filledQuantity")
    client_id = data.get("clientId")
    return OrderEvent(
        venue_order_id=order_id,
        client_id=client_id if isinstance(client_id, str) and client_id else None,
        symbol=fill.symbol,
        side=fill.side,
        status=status,
        quantity=opt_dec(VENUE, data, "totalQuantity"),
        filled_quantity=None if filled is None else non_negative(VENUE, filled, "filledQuantity"),
        fills=(fill,),
    )


def parse_order_event(data: Any) -> OrderEvent:
    """An ORDER_CREATED / ORDER_UPDATED / ORDER_CANCELED payload: the order as GET /trade/order shows it."""
    order = parse.parse_order(data)
    return OrderEvent(
        venue_order_id=order.venue_order_id,
        client_id=order.client_id,
        symbol=order.symbol,
        side=order.side,
        status=order.status,
        quantity=order.quantity,
        filled_quantity=order.filled_quantity,
        created_at=order.created_at,
    )


class HibachiAccountDialect:
    """The AccountDialect of Hibachi: the API key in the handshake, `stream.start` answered with a listen key
    (the subscription is live from that reply), `stream.ping` with it every keepalive period."""

    venue = VENUE
    acknowledges = True

    def __init__(self, url: str, api_key: str, account_id: int, clock: Clock) -> None:
        self.url = account_url(url, account_id)
        self._api_key = api_key
        self._account_id = account_id
        self._clock = clock
        self._ids = count(1)
        self._start_id: int | None = None
        self._listen_key: str | None = None

    def _request(self, method: str, params: dict[str, Any]) -> tuple[int, str]:
        request_id = next(self._ids)
        frame = {"id": request_id, "method": method, "params": params, "timestamp": int(self._clock.now().timestamp())}
        return request_id, json.dumps(frame, separators=(",", ":"))

    def headers(self) -> dict[str, str]:
        """The API key, as on REST."""
        return {"Authorization": self._api_key}

    def opening(self) -> list[str]:
        """`stream.start` (a new listen key on every connection)."""
        self._listen_key = None
        self._start_id, frame = self._request("stream.start", {"accountId": self._account_id})
        return [frame]

    def keepalive(self) -> list[str]:
        """`stream.ping` with the listen key (it expires after 10 s without one, spec §5)."""
        if self._listen_key is None:
            return []
        _, frame = self._request("stream.ping", {"accountId": self._account_id, "listenKey": self._listen_key})
        return [frame]

    def read(self, raw: str | bytes) -> StreamReading:
        """One frame: a reply to our request, or a pushed event."""
        msg = json_object(VENUE, raw, "account stream frame")
        if "status" in msg and "id" in msg:
            return self._reply(msg)
        name = event_name(msg)
        if name in ORDER_EVENTS:
            return StreamReading(events=(parse_order_event(msg.get("data")),))
        if name == TRADE_EVENT:
            return StreamReading(events=(parse_trade_update(msg.get("data")),))
        return StreamReading()  # positions, balances: REST stays their truth

    def _reply(self, msg: Mapping[str, Any]) -> StreamReading:
        if msg.get("status") != 200:
            error = msg.get("error")
            if not isinstance(error, Mapping):
                error = {}
            # A refused login, start or ping (an expired listen key): start over on a new connection.
            return StreamReading(refused=f"{msg.get('status')}: {str(error.get('message'))[:200]}")
        if msg.get("id") == self._start_id:
            result = msg.get("result")
            key = result.get("listenKey") if isinstance(result, Mapping) else None
            if not isinstance(key, str) or not key:
                return StreamReading(refused="stream.start answered without a listenKey")
            self._listen_key = key
            return StreamReading(subscribed=True)
        return StreamReading()
